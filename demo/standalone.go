package demo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// AdminPath is where a [Standalone] world serves its controls for tests and
// benchmarks (see [Standalone.Handler]).
const AdminPath = "/demo/admin/"

// AdminHeader must be sent, with the value "1", on every POST to AdminPath:
// a page on another site cannot send it without a CORS preflight, which
// the world never allows.
const AdminHeader = "X-Demo-Admin"

// Files a Standalone world writes next to the gateway configurations.
const (
	ClientSecretFile = "client-secret"
	SessionKeysFile  = "session-keys"
)

// StandaloneConfig describes a demo world that runs apart from the gateway,
// for several gateway processes at once.
type StandaloneConfig struct {
	// ListenURL is where the world's own listener is reached, such as
	// http://127.0.0.1:9090. The provider's issuer is ListenURL + /demo/idp.
	ListenURL string
	// Gateways are the public URLs of the gateway's replicas, at least one,
	// such as http://localhost:8081. Each one's login callbacks and
	// post-logout page are registered at the demo client; back-channel
	// logouts go to the first, as they would to a load balancer.
	Gateways []string
	// RedisURL, when set, has the replicas share their sessions in Redis
	// (session.store: redis). Without it each replica keeps its own in
	// memory.
	RedisURL string
	// AccessTokenLifetime is how long the provider's access tokens live;
	// zero keeps the demo's default. The configurations refresh a fifth of
	// it before expiry, or the gateway's default skew if that is shorter.
	AccessTokenLifetime time.Duration
	// Canned puts a [CannedBackend] in front of each of the four backends,
	// and the configurations name those instead: the gateway's backend
	// calls are then answered from memory, for load tests of the gateway's
	// own cost (docs/bench.md). Logins and tokens are unchanged.
	Canned bool
	// Logger receives the world's log. Default: discard.
	Logger *slog.Logger
}

// Standalone is a demo world that runs apart from the gateway: the provider
// served on the world's own listener, the four backends on loopback ports,
// a token endpoint that counts requests by grant type and can be slowed
// down, and configuration files for the gateway's replicas. Not for
// production: users, passwords and keys are made up, and the controls
// under AdminPath need no credentials.
type Standalone struct {
	// World is the provider, the backends, and the configuration of the
	// first replica.
	World *World

	cfg     StandaloneConfig
	tokens  *tokenEndpoint
	handler http.Handler
	canned  map[string]*CannedBackend // by backend name, with cfg.Canned
}

// StartStandalone starts the backends and the provider of a standalone
// world; serve [Standalone.Handler] at c.ListenURL.
func StartStandalone(ctx context.Context, c StandaloneConfig) (*Standalone, error) {
	if len(c.Gateways) == 0 {
		return nil, errors.New("demo: no gateway URL")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	opts := []Option{WithLogger(c.Logger), WithReplicas(c.Gateways[1:]...)}
	if c.AccessTokenLifetime != 0 {
		opts = append(opts, WithAccessTokenLifetime(c.AccessTokenLifetime))
	}
	world, err := Start(ctx, c.Gateways[0], c.ListenURL, opts...)
	if err != nil {
		return nil, err
	}
	s := &Standalone{World: world, cfg: c, tokens: newTokenEndpoint(world.IdP, world.IdP.Issuer())}
	if c.Canned {
		if err := s.startCanned(ctx); err != nil {
			return nil, errors.Join(err, s.Close(context.WithoutCancel(ctx)))
		}
	}
	mux := http.NewServeMux()
	mux.Handle(IdPPath, s.tokens)
	mux.HandleFunc("GET "+AdminPath+"token-requests", s.serveTokenRequests)
	mux.HandleFunc("GET "+AdminPath+"canned", s.serveCannedStats)
	mux.HandleFunc("POST "+AdminPath+"token-delay", s.admin(s.serveTokenDelay))
	mux.HandleFunc("POST "+AdminPath+"backchannel-logout", s.admin(s.serveBackchannelLogout))
	mux.HandleFunc("POST "+AdminPath+"revoke-tokens", s.admin(s.serveRevokeTokens))
	s.handler = mux
	return s, nil
}

// Handler serves the provider under IdPPath and these controls:
//
//   - GET /demo/admin/token-requests: the token endpoint's requests by
//     grant type, as JSON: {"refresh_token": {"requests": 1, "succeeded":
//     1, "refused": 0, "dropped": 0, "in_flight": 0}, ...}.
//   - GET /demo/admin/canned: with StandaloneConfig.Canned, each canned
//     backend's counters (CannedStats) by backend name, as JSON; {} without.
//   - POST /demo/admin/token-delay, form grant_type and delay (a Go
//     duration, 0s to stop): the token endpoint holds requests of that
//     grant type this long before serving them. A request whose sender goes
//     away meanwhile is dropped unserved, as if it had been lost on the way.
//   - POST /demo/admin/backchannel-logout, form subject and per ("session":
//     one logout token per provider session, naming its sid; "subject": one
//     token per client naming the subject alone): ends the subject's
//     sessions at the provider and delivers the logout tokens.
//   - POST /demo/admin/revoke-tokens, form subject: the provider revokes
//     the subject's access and refresh tokens without telling anyone, so a
//     gateway's next refresh of them is refused (idp.Provider.RevokeSubject).
//
// POSTs need the header AdminHeader: 1.
func (s *Standalone) Handler() http.Handler { return s.handler }

// TokenRequests returns the token endpoint's requests so far, by grant type.
func (s *Standalone) TokenRequests() map[string]GrantStats { return s.tokens.snapshot() }

// Close stops the canned backends, if any, and the backends.
func (s *Standalone) Close(ctx context.Context) error {
	var errs []error
	for _, c := range s.canned {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(append(errs, s.World.Close(ctx))...)
}

// startCanned starts a canned backend in front of each backend.
func (s *Standalone) startCanned(ctx context.Context) error {
	s.canned = make(map[string]*CannedBackend)
	for _, b := range s.World.Backends.All() {
		c, err := StartCanned(ctx, b.Name(), b.URL(), s.cfg.Logger.With("component", "demo-canned"))
		if err != nil {
			return err
		}
		s.canned[b.Name()] = c
	}
	return nil
}

// CannedStats returns each canned backend's counters by backend name;
// empty without StandaloneConfig.Canned.
func (s *Standalone) CannedStats() map[string]CannedStats {
	stats := make(map[string]CannedStats, len(s.canned))
	for name, c := range s.canned {
		stats[name] = c.Stats()
	}
	return stats
}

// WriteConfigs writes a configuration file for each gateway replica into dir
// (gateway-1.yaml for the first URL, and so on), and the secrets they name
// (ClientSecretFile, SessionKeysFile, readable by the owner only). Each is
// loaded back with [config.Load] before WriteConfigs returns their paths.
func (s *Standalone) WriteConfigs(dir string) ([]string, error) {
	cfg := s.World.Config
	secret := []byte(cfg.OIDC.ClientSecret + "\n")
	if err := os.WriteFile(filepath.Join(dir, ClientSecretFile), secret, 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var keys strings.Builder
	for _, k := range cfg.Session.Keys {
		keys.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, SessionKeysFile), []byte(keys.String()), 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var paths []string
	for i, gw := range s.cfg.Gateways {
		f := s.fileFor(strings.TrimRight(gw, "/"))
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "# Replica %d of %d of a gateway on the Custodian demo world (custodian-demo).\n"+
			"# Made-up users and keys: not for production.\n", i+1, len(s.cfg.Gateways))
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(f); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		path := filepath.Join(dir, fmt.Sprintf("gateway-%d.yaml", i+1))
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if _, err := config.Load(path, nil); err != nil {
			return nil, fmt.Errorf("demo: the configuration written does not load: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// The subset of the configuration file a replica needs; everything else
// keeps the gateway's defaults.
type (
	fileConfig struct {
		Listen     string         `yaml:"listen,omitempty"`
		PublicURL  string         `yaml:"public_url"`
		OIDC       fileOIDC       `yaml:"oidc"`
		Session    fileSession    `yaml:"session"`
		RateLimits fileRateLimits `yaml:"rate_limits"`
		Backends   []fileBackend  `yaml:"backends"`
	}
	fileOIDC struct {
		Issuer           string `yaml:"issuer"`
		ClientID         string `yaml:"client_id"`
		ClientSecretFile string `yaml:"client_secret_file"`
	}
	fileSession struct {
		Store       string `yaml:"store"`
		RedisURL    string `yaml:"redis_url,omitempty"`
		KeysFile    string `yaml:"keys_file"`
		RefreshSkew string `yaml:"refresh_skew,omitempty"`
	}
	fileRateLimits struct {
		PerIP      config.RateLimit `yaml:"per_ip"`
		PerSession config.RateLimit `yaml:"per_session"`
		Login      config.RateLimit `yaml:"login"`
	}
	fileBackend struct {
		Name     string `yaml:"name"`
		URL      string `yaml:"url"`
		Protocol string `yaml:"protocol"`
		Token    string `yaml:"token"`
		Audience string `yaml:"audience,omitempty"`
	}
)

// fileFor returns the configuration of the replica at publicURL.
func (s *Standalone) fileFor(publicURL string) fileConfig {
	cfg := s.World.Config
	f := fileConfig{
		Listen:    loopbackListen(publicURL),
		PublicURL: publicURL,
		OIDC: fileOIDC{
			Issuer:           cfg.OIDC.Issuer,
			ClientID:         cfg.OIDC.ClientID,
			ClientSecretFile: ClientSecretFile,
		},
		Session: fileSession{Store: config.StoreMemory, KeysFile: SessionKeysFile},
		RateLimits: fileRateLimits{
			PerIP:      *cfg.RateLimits.PerIP,
			PerSession: *cfg.RateLimits.PerSession,
			Login:      *cfg.RateLimits.Login,
		},
	}
	if s.cfg.RedisURL != "" {
		f.Session.Store, f.Session.RedisURL = config.StoreRedis, s.cfg.RedisURL
	}
	if skew := s.cfg.AccessTokenLifetime / 5; skew > 0 && skew < session.DefaultRefreshSkew {
		f.Session.RefreshSkew = skew.String()
	}
	for _, b := range cfg.Backends {
		u := b.URL
		if c := s.canned[b.Name]; c != nil {
			u = c.URL() // the only difference a canned world makes
		}
		f.Backends = append(f.Backends, fileBackend{Name: b.Name, URL: u, Protocol: b.Protocol, Token: b.Token, Audience: b.Audience})
	}
	return f
}

// loopbackListen returns the loopback address a replica at publicURL
// listens on, "" (the gateway's default, or --addr) for any other host.
func loopbackListen(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Port() == "" {
		return ""
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1":
		return net.JoinHostPort("127.0.0.1", u.Port())
	case "::1":
		return net.JoinHostPort("::1", u.Port())
	}
	return ""
}

// admin refuses POSTs without AdminHeader.
func (s *Standalone) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(AdminHeader) != "1" {
			http.Error(w, "missing "+AdminHeader+": 1", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h(w, r)
	}
}

func (s *Standalone) serveTokenRequests(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.tokens.snapshot())
}

func (s *Standalone) serveCannedStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.CannedStats())
}

func (s *Standalone) serveTokenDelay(w http.ResponseWriter, r *http.Request) {
	grant := r.PostForm.Get("grant_type")
	d, err := time.ParseDuration(r.PostForm.Get("delay"))
	if grant == "" || err != nil || d < 0 || d > time.Minute {
		http.Error(w, "want grant_type and a delay between 0s and 1m", http.StatusBadRequest)
		return
	}
	s.tokens.setDelay(grant, d)
	s.cfg.Logger.InfoContext(r.Context(), "token endpoint delay set", "grant_type", grant, "delay", d)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Standalone) serveBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	subject := r.PostForm.Get("subject")
	var err error
	switch per := r.PostForm.Get("per"); {
	case subject == "":
		http.Error(w, "want a subject", http.StatusBadRequest)
		return
	case per == "session" || per == "":
		err = s.World.IdP.BackchannelLogout(r.Context(), subject)
	case per == "subject":
		err = s.World.IdP.BackchannelLogoutSubject(r.Context(), subject)
	default:
		http.Error(w, `per is "session" or "subject"`, http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Standalone) serveRevokeTokens(w http.ResponseWriter, r *http.Request) {
	subject := r.PostForm.Get("subject")
	if subject == "" {
		http.Error(w, "want a subject", http.StatusBadRequest)
		return
	}
	s.World.IdP.RevokeSubject(r.Context(), subject)
	w.WriteHeader(http.StatusNoContent)
}
