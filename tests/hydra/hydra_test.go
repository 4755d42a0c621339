// Package hydra is Custodian's interop suite against Ory Hydra v2.3, an
// OpenID Certified provider: real processes, real listeners. The Hydra
// binary is built from the Go module proxy by scripts/hydra.sh (module
// ./tool, kept apart so that Hydra's dependencies never change the versions
// Custodian is built with here) and named by HYDRA_BIN.
//
// Each test starts its own gateway with custodian.New and a configuration
// built in code, registered as a client of its own at one shared Hydra.
// Hydra serves its public and admin APIs on Unix sockets in a temporary
// directory, so it needs no TCP port of its own. Browsers
// and the gateway reach Hydra's public API through a wiretap, a reverse
// proxy on 127.0.0.1 that is Hydra's issuer URL and records what crosses
// the token and revocation endpoints, so the tests see the refresh tokens
// Hydra issues without reading the gateway's sealed session records.
package hydra

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Hydra's token lifetimes. Access tokens are short so that a test moves
// the gateway's clock past one without reaching the session's idle timeout.
const (
	accessTokenTTL = 5 * time.Minute
	hydraStartup   = 60 * time.Second
)

// hydra is a running Hydra process.
type hydra struct {
	// Issuer is the wiretap's URL, Hydra's issuer and public URL.
	Issuer string
	// Tap records the token and revocation traffic.
	Tap *wiretap
	// Login is the login, consent and logout app Hydra sends browsers to.
	Login *loginApp

	admin   *http.Client // Hydra's admin API, over its Unix socket
	logPath string
}

// startHydra starts Hydra (in memory, dev mode) with the login app, until
// t ends.
func startHydra(t *testing.T) *hydra {
	t.Helper()
	bin := os.Getenv("HYDRA_BIN")
	if bin == "" {
		t.Fatal("HYDRA_BIN is not set: run scripts/hydra.sh, which builds Hydra v2.3.0 and runs this suite")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("HYDRA_BIN: %v", err)
	}
	// Unix socket paths are limited to 108 bytes: t.TempDir's may be
	// longer, so the sockets get a short directory of their own.
	sockDir, err := os.MkdirTemp("", "hydra")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	publicSock := filepath.Join(sockDir, "public.sock")
	adminSock := filepath.Join(sockDir, "admin.sock")

	tapLn, tapPort := listenLoopback(t)
	h := &hydra{
		Issuer:  "http://127.0.0.1:" + tapPort,
		admin:   unixClient(t, adminSock),
		logPath: filepath.Join(t.TempDir(), "hydra.log"),
	}
	h.Login = startLoginApp(t, h)
	public := unixClient(t, publicSock)
	h.Tap = serveWiretap(t, tapLn, public.Transport)

	logFile, err := os.Create(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"LOG_LEVEL=info",
		"LOG_LEAK_SENSITIVE_VALUES=false",
		// No telemetry; and should anything still try the outside
		// world over HTTPS, it meets a closed loopback port.
		"SQA_OPT_OUT=true",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"SECRETS_SYSTEM="+randomString(t, 32),
		"SERVE_PUBLIC_HOST=unix:"+publicSock,
		"SERVE_ADMIN_HOST=unix:"+adminSock,
		"URLS_SELF_ISSUER="+h.Issuer,
		"URLS_SELF_PUBLIC="+h.Issuer,
		"URLS_LOGIN="+h.Login.URL+"/login",
		"URLS_CONSENT="+h.Login.URL+"/consent",
		"URLS_LOGOUT="+h.Login.URL+"/logout",
		"URLS_ERROR="+h.Login.URL+"/error",
		"URLS_POST_LOGOUT_REDIRECT="+h.Login.URL+"/logged-out",
		"TTL_ACCESS_TOKEN="+accessTokenTTL.String(),
		"TTL_REFRESH_TOKEN=1h",
		// Every client must use PKCE: a login without it fails.
		"OAUTH2_PKCE_ENFORCED=true",
		// Client secrets are hashed at every token request; the
		// lowest cost keeps the suite fast and changes nothing else.
		"OAUTH2_HASHERS_ALGORITHM=bcrypt",
		"OAUTH2_HASHERS_BCRYPT_COST=4",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting Hydra: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Hydra drains on SIGTERM; a stuck one is killed.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			t.Logf("Hydra's warnings and errors (last 16 KiB):\n%s", problems(h.logPath, 16<<10))
		}
	})

	// The admin and public APIs start each on its own: wait for both.
	ready := func(c *http.Client) bool {
		res, err := c.Get("http://hydra/health/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(hydraStartup)
	for {
		if ready(h.admin) && ready(public) {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("Hydra exited at start (%v); its log:\n%s", err, tail(h.logPath, 16<<10))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Hydra not ready after %v; its log:\n%s", hydraStartup, tail(h.logPath, 16<<10))
		}
	}
	// The first discovery creates the signing keys; do it before the
	// tests race to.
	res, err := http.Get(h.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Hydra's discovery: %s", res.Status)
	}
	return h
}

// unixClient returns an HTTP client whose every connection goes to the
// Unix socket at path.
func unixClient(t *testing.T, path string) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// adminJSON calls Hydra's admin API with a JSON body (nil for none) and
// decodes its JSON answer into out (nil to ignore it), failing the test
// unless the status is want.
func (h *hydra) adminJSON(t testing.TB, method, path string, body, out any, want int) {
	t.Helper()
	if err := h.adminCall(method, path, body, out, want); err != nil {
		t.Fatal(err)
	}
}

// adminCall is adminJSON returning its error, for handlers.
func (h *hydra) adminCall(method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://hydra"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.admin.Do(req)
	if err != nil {
		return fmt.Errorf("Hydra admin %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return fmt.Errorf("Hydra admin %s %s: %s, want %d: %s", method, path, res.Status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("Hydra admin %s %s: %w in %s", method, path, err, data)
		}
	}
	return nil
}

// client is a client registration at Hydra.
type client struct {
	ID     string
	Secret string
}

// registerGateway registers a gateway at publicURL as a confidential client
// of its own: the authorization code grant (PKCE is enforced for every
// client), refresh tokens, the gateway's callbacks, post-logout page and
// back-channel logout route, and client_secret_basic, which is what the
// gateway authenticates with at the token and revocation endpoints.
func (h *hydra) registerGateway(t testing.TB, publicURL string) client {
	t.Helper()
	return h.registerGatewayWith(t, publicURL, "client_secret_basic")
}

// registerGatewayWith is registerGateway with another
// token_endpoint_auth_method.
func (h *hydra) registerGatewayWith(t testing.TB, publicURL, authMethod string) client {
	t.Helper()
	c := client{ID: "custodian-" + randomString(t, 8), Secret: randomString(t, 32)}
	h.adminJSON(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_id":                           c.ID,
		"client_secret":                       c.Secret,
		"client_name":                         "Custodian gateway under test",
		"grant_types":                         []string{"authorization_code", "refresh_token"},
		"response_types":                      []string{"code"},
		"scope":                               "openid profile email offline_access",
		"redirect_uris":                       []string{publicURL + "/auth/callback", publicURL + "/login/callback"},
		"post_logout_redirect_uris":           []string{publicURL + "/"},
		"backchannel_logout_uri":              publicURL + "/auth/backchannel-logout",
		"backchannel_logout_session_required": true,
		"token_endpoint_auth_method":          authMethod,
	}, nil, http.StatusCreated)
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, "http://hydra/admin/clients/"+url.PathEscape(c.ID), nil)
		if res, err := h.admin.Do(req); err == nil {
			res.Body.Close()
		}
	})
	return c
}

// introspection is Hydra's introspection answer, the fields the tests read.
type introspection struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	TokenUse  string `json:"token_use"`
	ExpiresAt int64  `json:"exp"`
}

// introspect asks Hydra's admin API whether token is active.
func (h *hydra) introspect(ctx context.Context, token string) (introspection, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://hydra/admin/oauth2/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return introspection{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := h.admin.Do(req)
	if err != nil {
		return introspection{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return introspection{}, fmt.Errorf("introspection: %s", res.Status)
	}
	var in introspection
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&in); err != nil {
		return introspection{}, fmt.Errorf("introspection: %w", err)
	}
	return in, nil
}

// mustIntrospect is introspect that fails the test on error.
func (h *hydra) mustIntrospect(t testing.TB, token string) introspection {
	t.Helper()
	in, err := h.introspect(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// problems returns the last n bytes of the warnings and errors in Hydra's
// log at path.
func problems(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, "level=error") || strings.Contains(line, "level=warning") || strings.Contains(line, "level=fatal") {
			out = append(out, line)
		}
	}
	s := strings.Join(out, "")
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// listenLoopback listens on an ephemeral port of 127.0.0.1 until t ends.
func listenLoopback(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
