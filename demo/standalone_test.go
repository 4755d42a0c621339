package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/custodian-bff/custodian/demo"
	"github.com/custodian-bff/custodian/server/config"
)

// startStandalone serves a standalone world for gateways on loopback.
func startStandalone(t *testing.T, c demo.StandaloneConfig) (*demo.Standalone, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.ListenURL = "http://" + ln.Addr().String()
	s, err := demo.StartStandalone(t.Context(), c)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, c.ListenURL
}

func TestStandaloneWritesAConfigurationPerReplica(t *testing.T) {
	t.Parallel()
	gateways := []string{"http://localhost:18081", "http://localhost:18082/", "https://app.example.com"}
	s, base := startStandalone(t, demo.StandaloneConfig{
		Gateways:            gateways,
		RedisURL:            "redis://127.0.0.1:6379/0",
		AccessTokenLifetime: 10 * time.Second,
	})
	dir := t.TempDir()
	paths, err := s.WriteConfigs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(gateways) {
		t.Fatalf("%d configurations, want %d", len(paths), len(gateways))
	}
	for _, name := range []string{demo.ClientSecretFile, demo.SessionKeysFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	wantListen := []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:8080"}
	for i, path := range paths {
		cfg, err := config.Load(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want := strings.TrimRight(gateways[i], "/"); cfg.PublicURL != want {
			t.Errorf("%s: public_url %q, want %q", path, cfg.PublicURL, want)
		}
		if cfg.Listen != wantListen[i] {
			t.Errorf("%s: listen %q, want %q", path, cfg.Listen, wantListen[i])
		}
		if cfg.OIDC.Issuer != base+"/demo/idp" || cfg.OIDC.ClientID != demo.ClientID || cfg.OIDC.ClientSecret != s.World.Config.OIDC.ClientSecret {
			t.Errorf("%s: oidc %+v", path, cfg.OIDC)
		}
		if cfg.Session.Store != config.StoreRedis || cfg.Session.RedisURL != "redis://127.0.0.1:6379/0" {
			t.Errorf("%s: store %q at %q, want redis", path, cfg.Session.Store, cfg.Session.RedisURL)
		}
		if !slices.EqualFunc(cfg.Session.Keys, s.World.Config.Session.Keys, slices.Equal) {
			t.Errorf("%s: session keys differ from the world's", path)
		}
		if cfg.Session.RefreshSkew != 2*time.Second {
			t.Errorf("%s: refresh_skew %v, want a fifth of the token lifetime", path, cfg.Session.RefreshSkew)
		}
		if len(cfg.Backends) != 4 {
			t.Errorf("%s: %d backends, want 4", path, len(cfg.Backends))
		}
	}

	// Every replica's callback is registered: the provider shows its form
	// for each, and refuses another.
	for _, gw := range append(gateways, "http://localhost:9999") {
		q := url.Values{
			"client_id":             {demo.ClientID},
			"redirect_uri":          {strings.TrimRight(gw, "/") + "/auth/callback"},
			"response_type":         {"code"},
			"scope":                 {"openid"},
			"state":                 {"state-0123456789"},
			"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
			"code_challenge_method": {"S256"},
		}
		res, err := http.Get(base + "/demo/idp/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := http.StatusOK
		if gw == "http://localhost:9999" {
			want = http.StatusBadRequest
		}
		if res.StatusCode != want {
			t.Errorf("authorize for %s: %s, want %d", gw, res.Status, want)
		}
	}
}

func TestStandaloneCountsAndHoldsTokenRequests(t *testing.T) {
	t.Parallel()
	s, base := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18081"}})
	cc := clientcredentials.Config{
		ClientID:       demo.ClientID,
		ClientSecret:   s.World.Config.OIDC.ClientSecret,
		TokenURL:       base + "/demo/idp/token",
		EndpointParams: url.Values{"audience": {"acme-catalog"}},
	}
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	bad := cc
	bad.ClientSecret = "wrong"
	if _, err := bad.Token(t.Context()); err == nil {
		t.Fatal("a wrong client secret got a token")
	}
	stats := readStats(t, base)
	if got := stats["client_credentials"]; got != (demo.GrantStats{Requests: 2, Succeeded: 1, Refused: 1}) {
		t.Errorf("client_credentials: %+v, want 2 requests, 1 succeeded, 1 refused", got)
	}
	if s.TokenRequests()["client_credentials"] != stats["client_credentials"] {
		t.Errorf("TokenRequests %+v disagrees with the endpoint %+v", s.TokenRequests(), stats)
	}

	// Controls need the admin header.
	res, err := http.PostForm(base+demo.AdminPath+"token-delay", url.Values{"grant_type": {"client_credentials"}, "delay": {"1m"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("token-delay without %s: %s, want 403", demo.AdminHeader, res.Status)
	}

	// A held request whose sender gives up is dropped, never served.
	control(t, base, "token-delay", url.Values{"grant_type": {"client_credentials"}, "delay": {"1m"}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := cc.Token(ctx)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for readStats(t, base)["client_credentials"].InFlight != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the held request never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("held request: %v, want canceled", err)
	}
	for {
		got := readStats(t, base)["client_credentials"]
		if got == (demo.GrantStats{Requests: 3, Succeeded: 1, Refused: 1, Dropped: 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sender left: %+v, want it dropped", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	control(t, base, "token-delay", url.Values{"grant_type": {"client_credentials"}, "delay": {"0s"}})
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatalf("after the delay was lifted: %v", err)
	}
}

func TestStandaloneBackchannelLogoutControl(t *testing.T) {
	t.Parallel()
	_, base := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18081"}})
	// Nobody signed in: nothing to deliver, nothing fails.
	for _, per := range []string{"session", "subject"} {
		control(t, base, "backchannel-logout", url.Values{"subject": {"alice"}, "per": {per}})
	}
	req, err := http.NewRequest(http.MethodPost, base+demo.AdminPath+"backchannel-logout", strings.NewReader("subject=alice&per=everyone"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(demo.AdminHeader, "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("per=everyone: %s, want 400", res.Status)
	}
}

func readStats(t *testing.T, base string) map[string]demo.GrantStats {
	t.Helper()
	res, err := http.Get(base + demo.AdminPath + "token-requests")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var stats map[string]demo.GrantStats
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	return stats
}

func control(t *testing.T, base, name string, form url.Values) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+demo.AdminPath+name, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(demo.AdminHeader, "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %s", name, res.Status)
	}
}

// TestStandaloneRevokeTokensControl checks the control's wiring; what the
// revocation does is idp.Provider.RevokeSubject's test, and what a gateway
// then does is the Next.js example's end-to-end test.
func TestStandaloneRevokeTokensControl(t *testing.T) {
	t.Parallel()
	_, base := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18082"}})
	for _, c := range []struct {
		name   string
		form   string
		admin  bool
		status int
	}{
		{"revokes", "subject=alice", true, http.StatusNoContent},
		{"no subject", "", true, http.StatusBadRequest},
		{"no admin header", "subject=alice", false, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+demo.AdminPath+"revoke-tokens", strings.NewReader(c.form))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.admin {
				req.Header.Set(demo.AdminHeader, "1")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Errorf("status %d, want %d", res.StatusCode, c.status)
			}
		})
	}
}
