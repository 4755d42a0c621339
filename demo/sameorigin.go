package demo

import (
	"net/http"
	"net/url"
	"strings"
)

// sameOrigin reports whether a form post comes from a page of origin (the
// store's public origin, e.g. http://localhost:8080). A browser names the
// page's origin in Origin on every POST and says in Sec-Fetch-Site where
// the request comes from; a post with neither, or with either pointing
// elsewhere, is refused, so a page on another site cannot place an order,
// change a profile or break a backend with the visitor's session.
func sameOrigin(r *http.Request, origin string) bool {
	origins := r.Header.Values("Origin")
	site := r.Header.Values("Sec-Fetch-Site")
	if len(origins) > 1 || len(site) > 1 {
		return false
	}
	if len(site) == 1 && site[0] != "same-origin" {
		return false
	}
	if len(origins) == 1 {
		return strings.EqualFold(origins[0], origin)
	}
	return len(site) == 1
}

// originOf returns the scheme://host[:port] of a URL, lower-cased, as
// browsers send it in Origin.
func originOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// localPath returns p when it is a path of this site (such as
// "/orders?page=x"), and "/" otherwise, so a form's return address can
// never send the browser to another site.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) || strings.ContainsAny(p, "\\\x00\r\n\t") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return u.RequestURI()
}
