package hydra

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchange is one call to Hydra's token or revocation endpoint as the
// wiretap saw it.
type exchange struct {
	Path     string     // /oauth2/token or /oauth2/revoke
	ClientID string     // from the Basic credentials, or the form
	Basic    bool       // the client authenticated with client_secret_basic
	Form     url.Values // the request's form (client_secret removed)
	Status   int
	Answer   tokenAnswer
}

// tokenAnswer is a token endpoint's JSON answer.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
}

// wiretap is a reverse proxy in front of Hydra's public API that records
// the token and revocation traffic.
type wiretap struct {
	next http.RoundTripper

	mu  sync.Mutex
	log []exchange
}

// serveWiretap serves a wiretap on ln in front of next (Hydra's public API)
// until t ends.
func serveWiretap(t *testing.T, ln net.Listener, next http.RoundTripper) *wiretap {
	t.Helper()
	w := &wiretap{next: next}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = r.In.Host
			r.Out.Host = r.In.Host
		},
		Transport: w,
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return w
}

// RoundTrip forwards req to Hydra, recording it and the answer when it is
// for the token or revocation endpoint.
func (w *wiretap) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || (req.URL.Path != "/oauth2/token" && req.URL.Path != "/oauth2/revoke") {
		return w.next.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	form, _ := url.ParseQuery(string(body))
	ex := exchange{Path: req.URL.Path, Form: form, ClientID: form.Get("client_id")}
	if id, _, ok := req.BasicAuth(); ok {
		ex.Basic = true
		if unescaped, err := url.QueryUnescape(id); err == nil {
			ex.ClientID = unescaped
		}
	}
	ex.Form.Del("client_secret")
	res, err := w.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(answer))
	ex.Status = res.StatusCode
	_ = json.Unmarshal(answer, &ex.Answer)
	w.mu.Lock()
	w.log = append(w.log, ex)
	w.mu.Unlock()
	return res, nil
}

// Exchanges returns what clientID sent to path, in order.
func (w *wiretap) Exchanges(clientID, path string) []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []exchange
	for _, ex := range w.log {
		if ex.ClientID == clientID && ex.Path == path {
			out = append(out, ex)
		}
	}
	return out
}

// Grants returns clientID's token requests of grant type grant, in order.
func (w *wiretap) Grants(clientID, grant string) []exchange {
	var out []exchange
	for _, ex := range w.Exchanges(clientID, "/oauth2/token") {
		if ex.Form.Get("grant_type") == grant {
			out = append(out, ex)
		}
	}
	return out
}

// RefreshToken returns the refresh token Hydra issued clientID last.
func (w *wiretap) RefreshToken(t testing.TB, clientID string) string {
	t.Helper()
	exs := w.Exchanges(clientID, "/oauth2/token")
	for i := len(exs) - 1; i >= 0; i-- {
		if rt := exs[i].Answer.RefreshToken; rt != "" {
			return rt
		}
	}
	t.Fatalf("Hydra issued %s no refresh token", clientID)
	return ""
}

// randomString returns n random URL-safe characters.
func randomString(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(base64.RawURLEncoding.EncodeToString(b)[:n])
}

// jwtClaims decodes the claims of a compact JWT into v, without checking
// its signature: the test reads what Hydra issued, the gateway verifies.
func jwtClaims(t testing.TB, token string, v any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
}
