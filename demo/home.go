package demo

import (
	"html/template"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// Home is the demo's landing page. It is rendered on the server from the
// session cookie alone, as a server-side renderer forwarding the cookie
// would do, so it shows whether the very first page load after login
// already carries the session.
type Home struct {
	sessions atomic.Pointer[session.Manager]
}

// SetSessions sets the session manager; until then the page shows everyone
// as signed out.
func (h *Home) SetSessions(m *session.Manager) { h.sessions.Store(m) }

var homeTemplate = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme store · Custodian demo</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}</style>
</head><body>
<h1>Acme store</h1>
<p><em>Custodian demo: made-up users and keys, not for production.</em></p>
{{if .Name}}<p id="who">Signed in as <strong>{{.Name}}</strong> ({{.Email}})</p>
<p><a id="logout" href="{{.LogoutURL}}">Sign out</a></p>
{{else}}<p id="who">Not signed in.</p>
<p><a id="login" href="/auth/login?return_to=%2F">Sign in</a> (alice / demo or bob / demo)</p>{{end}}
</body></html>
`))

func (h *Home) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var data struct{ Name, Email, LogoutURL string }
	if m := h.sessions.Load(); m != nil {
		if s, err := m.FromHeader(r.Context(), r.Header); err == nil {
			data.Name, data.Email = s.User.Name, s.User.Email
			data.LogoutURL = "/auth/logout?id=" + url.QueryEscape(s.LogoutID)
		}
	}
	security.HTMLPage(w)
	_ = homeTemplate.Execute(w, data)
}
