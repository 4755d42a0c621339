package idp

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"net/url"
)

// pageStyle is shared by every page; the CSP allows inline styles only.
const pageStyle = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
.buttons{display:flex;gap:.5rem;margin-top:1.2rem}button{flex:1;padding:.6rem;font-size:1rem}
.error{color:#a40000}.hint{color:#667;font-size:.9rem}`

const pagesHTML = `{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} – Demo IdP</title><style>` + pageStyle + `</style></head>
<body><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "login"}}{{template "head" .}}
<h1>Sign in</h1>
<p>to continue to <strong>{{.ClientID}}</strong></p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="buttons"><button type="submit" name="login" value="1">Sign in</button>
<button type="submit" name="cancel" value="1" formnovalidate>Cancel</button></div>
</form>
{{if .Hint}}<p class="hint">{{.Hint}}</p>{{end}}
{{template "foot" .}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p{{if .IsError}} class="error"{{end}}>{{.Message}}</p>
{{template "foot" .}}{{end}}`

// pages renders the provider's few HTML pages.
type pages struct {
	tmpl *template.Template
}

func newPages() (*pages, error) {
	t, err := template.New("pages").Parse(pagesHTML)
	if err != nil {
		return nil, err
	}
	return &pages{tmpl: t}, nil
}

// loginPage is the data of the login form.
type loginPage struct {
	Title           string
	ClientID        string
	Action          string
	Username, Error string
	Hint            string
}

// messagePage is the data of an error or information page.
type messagePage struct {
	Title   string
	Message string
	IsError bool
}

// setPageHeaders sets the headers every HTML page and authorization response
// gets. formTargets are origins, besides the provider's own, that a form
// submission may end up at through a redirect.
func setPageHeaders(w http.ResponseWriter, formTargets ...string) {
	formAction := "'self'"
	for _, t := range formTargets {
		formAction += " " + t
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// origin returns the scheme://host of an absolute URL, or "" if it has none.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// render writes a page with status; a template failure becomes a plain 500.
func (p *Provider) render(ctx context.Context, w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.pages.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.logger.ErrorContext(ctx, "render page", "page", name, "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage writes a small page with a title and one sentence.
func (p *Provider) renderMessage(ctx context.Context, w http.ResponseWriter, status int, title, message string) {
	p.render(ctx, w, status, "message", messagePage{
		Title:   title,
		Message: message,
		IsError: status >= 400,
	})
}
