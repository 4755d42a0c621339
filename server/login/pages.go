package login

import (
	"html/template"
	"net/http"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/security"
)

// The pages a browser may land on during login and logout. They are small,
// static and safe to show: no provider text, no token, nothing cacheable.
type pageKind int

const (
	pageNotFound pageKind = iota
	pageBadAttempt
	pageProviderRefused
	pageLoginFailed
	pageProviderDown
	pageContinue
	pageBadLogoutLink
	pageForbidden
	pageLogoutUnavailable
)

var pageText = map[pageKind]struct{ title, body string }{
	pageNotFound:          {"Not found", "There is nothing here."},
	pageBadAttempt:        {"Sign-in expired", "This sign-in attempt is unknown, was already used or has expired. Please sign in again."},
	pageProviderRefused:   {"Sign-in not completed", "The identity provider did not sign you in."},
	pageLoginFailed:       {"Sign-in failed", "The sign-in could not be completed. Please sign in again."},
	pageProviderDown:      {"Sign-in unavailable", "The identity provider cannot be reached right now. Please try again in a moment."},
	pageContinue:          {"Signed in", "You are signed in."},
	pageBadLogoutLink:     {"Sign-out link not valid", "This sign-out link does not belong to your session. Use the sign-out button of the application."},
	pageForbidden:         {"Request refused", "This request was refused."},
	pageLogoutUnavailable: {"Sign-out unavailable", "Sessions cannot be reached right now, so you are still signed in. Please try again in a moment."},
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Continue}}<meta http-equiv="refresh" content="0;url={{.Continue}}">{{end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.Body}}</p>
{{if .Code}}<p>Reason: <code>{{.Code}}</code></p>{{end}}
{{if .Continue}}<p><a href="{{.Continue}}">Continue</a></p>{{else}}<p><a href="/auth/login">Sign in</a> · <a href="/">Home</a></p>{{end}}
{{if .RequestID}}<p><small>Request id: {{.RequestID}}</small></p>{{end}}
</body></html>
`))

// page writes one of the pages. arg is the continue path for pageContinue
// and the OAuth error code for pageProviderRefused.
func (f *Flow) page(w http.ResponseWriter, r *http.Request, status int, kind pageKind, arg string) {
	text := pageText[kind]
	data := struct {
		Title, Body, Code, Continue, RequestID string
	}{Title: text.title, Body: text.body, RequestID: requestid.FromContext(r.Context())}
	switch kind {
	case pageContinue:
		data.Continue = arg
	case pageProviderRefused:
		data.Code = arg
	}
	security.HTMLPage(w)
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, data); err != nil {
		f.logger.WarnContext(r.Context(), "writing a page failed", "error", err)
	}
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
