package hydra

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// The user every login signs in as, and the claims the consent app puts in
// the ID token.
const (
	userSubject = "alice"
	userName    = "Alice Liddell"
	userEmail   = "alice@example.com"
)

// loginApp is the login, consent and logout app of the tests, on Hydra's
// admin API: it signs everyone in as alice, grants every requested scope,
// and accepts every logout, recording each request.
type loginApp struct {
	URL string

	h *hydra

	mu       sync.Mutex
	logins   []flowRecord
	consents []flowRecord
	logouts  []flowRecord
}

// flowRecord is one login, consent or logout request as Hydra described it.
type flowRecord struct {
	ClientID    string
	Subject     string
	SID         string
	Skip        bool
	RPInitiated bool
	Scopes      []string
}

// hydraRequest is the part of Hydra's login, consent and logout requests
// the app reads.
type hydraRequest struct {
	Subject        string   `json:"subject"`
	Skip           bool     `json:"skip"`
	SID            string   `json:"sid"`
	RPInitiated    bool     `json:"rp_initiated"`
	RequestedScope []string `json:"requested_scope"`
	RequestedAud   []string `json:"requested_access_token_audience"`
	Client         *struct {
		ID string `json:"client_id"`
	} `json:"client"`
}

func (r hydraRequest) record() flowRecord {
	rec := flowRecord{Subject: r.Subject, SID: r.SID, Skip: r.Skip, RPInitiated: r.RPInitiated, Scopes: r.RequestedScope}
	if r.Client != nil {
		rec.ClientID = r.Client.ID
	}
	return rec
}

// redirect is Hydra's answer to an accepted request.
type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

func startLoginApp(t *testing.T, h *hydra) *loginApp {
	t.Helper()
	app := &loginApp{h: h}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", app.serveLogin)
	mux.HandleFunc("GET /consent", app.serveConsent)
	mux.HandleFunc("GET /logout", app.serveLogout)
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Hydra error: "+r.URL.Query().Get("error"), http.StatusBadRequest)
	})
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "signed out at Hydra")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	app.URL = srv.URL
	return app
}

// serveLogin signs the user in as alice, remembered, so that Hydra keeps a
// login session (with its sid) that logout later ends.
func (a *loginApp) serveLogin(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("login_challenge")
	q := "?login_challenge=" + url.QueryEscape(challenge)
	var req hydraRequest
	var next redirect
	if err := a.admin(http.MethodGet, "/admin/oauth2/auth/requests/login"+q, nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	a.mu.Lock()
	a.logins = append(a.logins, req.record())
	a.mu.Unlock()
	if err := a.admin(http.MethodPut, "/admin/oauth2/auth/requests/login/accept"+q, map[string]any{
		"subject":      userSubject,
		"remember":     true,
		"remember_for": 3600,
	}, &next); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, next.RedirectTo, http.StatusFound)
}

// serveConsent grants what the client asked for and puts the user's name
// and e-mail in the ID token.
func (a *loginApp) serveConsent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	q := "?consent_challenge=" + url.QueryEscape(challenge)
	var req hydraRequest
	var next redirect
	if err := a.admin(http.MethodGet, "/admin/oauth2/auth/requests/consent"+q, nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	a.mu.Lock()
	a.consents = append(a.consents, req.record())
	a.mu.Unlock()
	if err := a.admin(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept"+q, map[string]any{
		"grant_scope":                 req.RequestedScope,
		"grant_access_token_audience": req.RequestedAud,
		"remember":                    false,
		"session": map[string]any{
			"id_token": map[string]any{"name": userName, "email": userEmail},
		},
	}, &next); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, next.RedirectTo, http.StatusFound)
}

// serveLogout accepts the logout.
func (a *loginApp) serveLogout(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("logout_challenge")
	q := "?logout_challenge=" + url.QueryEscape(challenge)
	var req hydraRequest
	var next redirect
	if err := a.admin(http.MethodGet, "/admin/oauth2/auth/requests/logout"+q, nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	a.mu.Lock()
	a.logouts = append(a.logouts, req.record())
	a.mu.Unlock()
	if err := a.admin(http.MethodPut, "/admin/oauth2/auth/requests/logout/accept"+q, nil, &next); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, next.RedirectTo, http.StatusFound)
}

// admin calls Hydra's admin API for a handler.
func (a *loginApp) admin(method, path string, body, out any) error {
	return a.h.adminCall(method, path, body, out, http.StatusOK)
}

// Logins returns the login requests Hydra sent for clientID.
func (a *loginApp) Logins(clientID string) []flowRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return filter(a.logins, clientID)
}

// Consents returns the consent requests Hydra sent for clientID.
func (a *loginApp) Consents(clientID string) []flowRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return filter(a.consents, clientID)
}

// LogoutsOf returns the logout requests Hydra sent for the login session
// sid.
func (a *loginApp) LogoutsOf(sid string) []flowRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []flowRecord
	for _, r := range a.logouts {
		if r.SID == sid {
			out = append(out, r)
		}
	}
	return out
}

func filter(recs []flowRecord, clientID string) []flowRecord {
	var out []flowRecord
	for _, r := range recs {
		if r.ClientID == clientID {
			out = append(out, r)
		}
	}
	return out
}
