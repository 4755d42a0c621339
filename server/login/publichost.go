package login

import (
	"net/http"
	"net/url"
	"strings"
)

// viaPublicURL marks a login that was already sent to the public URL once.
// A proxy that rewrites Host without setting X-Forwarded-Host makes every
// login look like it arrived on another host; the mark stops that from
// becoming a redirect loop.
const viaPublicURL = "via_public_url"

// publicLoginRedirect returns where to send a login that reached the
// gateway on another host than the public URL's (http://127.0.0.1:8080 for
// http://localhost:8080, say), or "" to go on. The attempt's cookie is set
// for the host the browser used, and the provider returns to the public
// URL, where that cookie is missing: without this redirect the login would
// fail later as an expired sign-in. The query is kept, return_to included.
// It is a convenience, not a defence: a client that lies in Host or
// X-Forwarded-Host only gets that later failure. looped reports a login on
// another host that was already sent once, left to go on.
func publicLoginRedirect(publicURL string, r *http.Request) (target string, looped bool) {
	pub, err := url.Parse(publicURL)
	if err != nil || pub.Host == "" {
		return "", false
	}
	want := hostPort(pub.Scheme, pub.Host)
	if forwarded := r.Header.Get("X-Forwarded-Host"); forwarded != "" {
		// A proxy in front (Next.js rewrites, say) names the browser's host.
		first, _, _ := strings.Cut(forwarded, ",")
		if hostPort(pub.Scheme, strings.TrimSpace(first)) == want {
			return "", false
		}
	}
	q := r.URL.Query()
	switch {
	case hostPort(pub.Scheme, r.Host) == want:
		return "", false
	case q.Has(viaPublicURL):
		return "", true
	}
	q.Set(viaPublicURL, "1")
	return strings.TrimRight(publicURL, "/") + LoginPath + "?" + q.Encode(), false
}

// hostPort lowercases host and drops the scheme's default port.
func hostPort(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	}
	return host
}
