package config_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/config"
)

func TestLoadExample(t *testing.T) {
	t.Parallel()
	env := testEnv()
	env["CUSTODIAN_REDIS_PASSWORD"] = testRedisPassword
	cfg, err := config.Load(filepath.Join("..", "..", "docs", "custodian.example.yaml"), envFunc(env))
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if cfg.PublicURL != "https://app.example.com" || !strings.HasPrefix(cfg.OIDC.Issuer, "https://") {
		t.Errorf("public_url %q, issuer %q: want https URLs", cfg.PublicURL, cfg.OIDC.Issuer)
	}
	if cfg.OIDC.ClientSecret != testClientSecret || len(cfg.Session.Keys) != 1 || cfg.Session.RedisPassword != testRedisPassword {
		t.Errorf("secrets from the environment were not loaded")
	}
	var names, protocols, tokens []string
	for _, b := range cfg.Backends {
		names = append(names, b.Name)
		protocols = append(protocols, b.Protocol)
		tokens = append(tokens, b.Token)
	}
	wantNames := []string{"profiles", "orders", "catalog", "loyalty"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("backends %v, want %v", names, wantNames)
	}
	wantProtocols := []string{config.ProtocolConnect, config.ProtocolGRPC, config.ProtocolConnect, config.ProtocolGRPCWeb}
	if !reflect.DeepEqual(protocols, wantProtocols) {
		t.Errorf("protocols %v, want %v", protocols, wantProtocols)
	}
	wantTokens := []string{config.TokenUser, config.TokenExchange, config.TokenNone, config.TokenClient}
	if !reflect.DeepEqual(tokens, wantTokens) {
		t.Errorf("tokens %v, want %v", tokens, wantTokens)
	}
	if got := cfg.RateLimits.Methods["/acme.storefront.v1.AccountService/GetDashboard"]; got != (config.RateLimit{Rate: 2, Burst: 5}) {
		t.Errorf("GetDashboard rate limit %+v, want {2 5}", got)
	}
	if got := cfg.Backends[3].Timeout; got != 2*time.Second {
		t.Errorf("loyalty timeout %v, want the 2s default", got)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(minimalYAML), "", envFunc(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := testKey(1)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"tls", cfg.TLS, (*config.TLS)(nil)},
		{"server", cfg.Server, config.Server{
			ReadHeaderTimeout:    5 * time.Second,
			ReadTimeout:          30 * time.Second,
			WriteTimeout:         0,
			IdleTimeout:          120 * time.Second,
			MaxHeaderBytes:       16384,
			MaxBodyBytes:         1 << 20,
			MaxConcurrentStreams: 100,
			ShutdownTimeout:      20 * time.Second,
		}},
		{"oidc.scopes", cfg.OIDC.Scopes, []string{"openid", "profile", "email", "offline_access"}},
		{"oidc.post_logout_redirect_path", cfg.OIDC.PostLogoutRedirectPath, "/"},
		{"oidc.client_secret", cfg.OIDC.ClientSecret, testClientSecret},
		{"session", cfg.Session, config.Session{
			CookieName:      "__Host-custodian",
			SameSite:        config.SameSiteStrict,
			IdleTimeout:     30 * time.Minute,
			AbsoluteTimeout: 12 * time.Hour,
			Store:           config.StoreMemory,
			MaxSessions:     100000,
			Keys:            [][]byte{key},
			RefreshSkew:     60 * time.Second,
		}},
		{"cors", cfg.CORS, config.CORS{MaxAge: 2 * time.Hour}},
		{"rate_limits", cfg.RateLimits, config.RateLimits{
			PerIP:      &config.RateLimit{Rate: 100, Burst: 200},
			PerSession: &config.RateLimit{Rate: 50, Burst: 100},
			Login:      &config.RateLimit{Rate: 1, Burst: 10},
		}},
		{"backends", cfg.Backends, []config.Backend{{
			Name:     "profiles",
			URL:      "http://profiles:8080",
			Protocol: config.ProtocolConnect,
			Token:    config.TokenUser,
			Timeout:  2 * time.Second,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestRedisDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(minimalYAML+"session:\n  store: redis\n  redis_url: redis://redis\n  redis_read_timeout: 250ms\n"), "", envFunc(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Session
	if s.RedisPoolSize != 100 || s.RedisDialTimeout != 2*time.Second || s.RedisReadTimeout != 250*time.Millisecond || s.RedisWriteTimeout != time.Second {
		t.Errorf("pool size %d, timeouts %v %v %v; want 100, 2s, 250ms (set), 1s",
			s.RedisPoolSize, s.RedisDialTimeout, s.RedisReadTimeout, s.RedisWriteTimeout)
	}
}

func TestApplyDefaultsKeepsSetValues(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(edit(t, fullYAML, "  read_timeout: 30s", "  read_timeout: 7s\n  write_timeout: 1m")), "", envFunc(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ReadTimeout != 7*time.Second || cfg.Server.WriteTimeout != time.Minute {
		t.Errorf("read_timeout %v, write_timeout %v: want 7s and 1m", cfg.Server.ReadTimeout, cfg.Server.WriteTimeout)
	}
	if !reflect.DeepEqual(cfg.OIDC.Scopes, []string{"openid", "profile"}) {
		t.Errorf("scopes %v: the configured ones were replaced", cfg.OIDC.Scopes)
	}
}

func TestRateLimitsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string // appended to minimalYAML
		want config.RateLimits
	}{
		{
			name: "absent block takes every default",
			want: config.RateLimits{PerIP: &config.RateLimit{Rate: 100, Burst: 200}, PerSession: &config.RateLimit{Rate: 50, Burst: 100}, Login: &config.RateLimit{Rate: 1, Burst: 10}},
		},
		{
			name: "a limit written as zero is off, not defaulted",
			yaml: "rate_limits:\n  per_ip: {rate: 0}\n  per_session: {}\n",
			want: config.RateLimits{PerIP: &config.RateLimit{}, PerSession: &config.RateLimit{}, Login: &config.RateLimit{Rate: 1, Burst: 10}},
		},
		{
			name: "set values and methods are kept",
			yaml: "rate_limits:\n  login: {rate: 0.5, burst: 3}\n  methods:\n    /acme.storefront.v1.ProductService/ListProducts: {rate: 5, burst: 10}\n",
			want: config.RateLimits{
				PerIP: &config.RateLimit{Rate: 100, Burst: 200}, PerSession: &config.RateLimit{Rate: 50, Burst: 100}, Login: &config.RateLimit{Rate: 0.5, Burst: 3},
				Methods: map[string]config.RateLimit{"/acme.storefront.v1.ProductService/ListProducts": {Rate: 5, Burst: 10}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(minimalYAML+tt.yaml), "", envFunc(testEnv()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.RateLimits, tt.want) {
				t.Errorf("rate_limits %s, want %s", fmtLimits(cfg.RateLimits), fmtLimits(tt.want))
			}
		})
	}
	// Defaults are copies: changing one config's limit leaves the next alone.
	var a, b config.Config
	a.ApplyDefaults()
	a.RateLimits.PerIP.Rate = 1
	b.ApplyDefaults()
	if b.RateLimits.PerIP.Rate != 100 {
		t.Errorf("defaults are shared between configs: per_ip rate %v", b.RateLimits.PerIP.Rate)
	}
}

func fmtLimits(r config.RateLimits) string {
	return fmt.Sprintf("{per_ip %+v, per_session %+v, login %+v, methods %v}", r.PerIP, r.PerSession, r.Login, r.Methods)
}

func TestTrustedPrefixes(t *testing.T) {
	t.Parallel()
	s := config.Server{TrustedProxies: []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1/32", "not-a-prefix"}}
	got := s.TrustedPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedPrefixes = %v, want %v", got, want)
	}
	if got := (&config.Server{}).TrustedPrefixes(); len(got) != 0 {
		t.Errorf("no trusted proxies: TrustedPrefixes = %v, want none", got)
	}
}

func TestApplyDefaultsTrimsOriginSlash(t *testing.T) {
	t.Parallel()
	data := edit(t, fullYAML, "public_url: https://app.example.com", "public_url: https://app.example.com/")
	data = edit(t, data, "[https://www.example.com]", "[https://www.example.com/]")
	cfg, err := config.Parse([]byte(data), "", envFunc(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "https://app.example.com" || cfg.CORS.AllowedOrigins[0] != "https://www.example.com" {
		t.Errorf("public_url %q, origin %q: want no trailing slash", cfg.PublicURL, cfg.CORS.AllowedOrigins[0])
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	key1, b64Key1 := testKey(1)
	key2, b64Key2 := testKey(2)
	key3, b64Key3 := testKey(3)
	yamlWithFiles := strings.Replace(minimalYAML, "  client_id: custodian\n",
		"  client_id: custodian\n  client_secret_file: secrets/client_secret\n", 1) +
		"session:\n  keys_file: secrets/session_keys\n"
	tests := []struct {
		name       string
		files      map[string]string // relative to the config's directory
		env        map[string]string
		wantSecret string
		wantKeys   [][]byte
		wantRedis  string
	}{
		{
			name: "files only",
			files: map[string]string{
				"secrets/client_secret": "file-secret\n",
				"secrets/session_keys":  b64Key1 + "\n" + b64Key2 + "\n",
			},
			wantSecret: "file-secret",
			wantKeys:   [][]byte{key1, key2},
		},
		{
			name: "env wins over files",
			files: map[string]string{
				"secrets/client_secret": "file-secret\n",
				"secrets/session_keys":  b64Key1 + "\n",
			},
			env: map[string]string{
				"CUSTODIAN_OIDC_CLIENT_SECRET": "env-secret",
				"CUSTODIAN_SESSION_KEYS":       b64Key3 + "," + b64Key2,
				"CUSTODIAN_REDIS_PASSWORD":     testRedisPassword,
			},
			wantSecret: "env-secret",
			wantKeys:   [][]byte{key3, key2},
			wantRedis:  testRedisPassword,
		},
		{
			name:  "env wins even when the files are missing",
			files: map[string]string{},
			env: map[string]string{
				"CUSTODIAN_OIDC_CLIENT_SECRET": "env-secret",
				"CUSTODIAN_SESSION_KEYS":       b64Key1,
			},
			wantSecret: "env-secret",
			wantKeys:   [][]byte{key1},
		},
		{
			name: "only trailing newlines are trimmed",
			files: map[string]string{
				"secrets/client_secret": " spaced secret \r\n\n",
				"secrets/session_keys":  b64Key1,
			},
			wantSecret: " spaced secret ",
			wantKeys:   [][]byte{key1},
		},
		{
			name: "key file with comments, blank lines and every base64 form",
			files: map[string]string{
				"secrets/client_secret": "file-secret",
				"secrets/session_keys": "# newest first\n" +
					base64.RawStdEncoding.EncodeToString(key1) + "\n\n" +
					base64.URLEncoding.EncodeToString(key2) + "\n" +
					"  " + base64.RawURLEncoding.EncodeToString(key3) + "  \n",
			},
			wantSecret: "file-secret",
			wantKeys:   [][]byte{key1, key2, key3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, data := range tt.files {
				writeFile(t, dir, name, data)
			}
			// The test's working directory is the package's, not dir:
			// relative paths must resolve against the file.
			path := writeFile(t, dir, "custodian.yaml", yamlWithFiles)
			cfg, err := config.Load(path, envFunc(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OIDC.ClientSecret != tt.wantSecret {
				t.Errorf("client secret %q, want %q", cfg.OIDC.ClientSecret, tt.wantSecret)
			}
			if !reflect.DeepEqual(cfg.Session.Keys, tt.wantKeys) {
				t.Errorf("got %d keys, want %d, or they differ", len(cfg.Session.Keys), len(tt.wantKeys))
			}
			if cfg.Session.RedisPassword != tt.wantRedis {
				t.Errorf("redis password %q, want %q", cfg.Session.RedisPassword, tt.wantRedis)
			}
		})
	}
}

func TestRelativePaths(t *testing.T) {
	t.Parallel()
	_, b64Key := testKey(1)
	dir := t.TempDir()
	writeFile(t, dir, "secrets/client_secret", "file-secret")
	writeFile(t, dir, "secrets/session_keys", b64Key)
	writeFile(t, dir, "tls/cert.pem", "not checked for content")
	writeFile(t, dir, "tls/key.pem", "not checked for content")
	data := strings.Replace(minimalYAML, "  client_id: custodian\n",
		"  client_id: custodian\n  client_secret_file: secrets/client_secret\n", 1) +
		"session:\n  keys_file: secrets/session_keys\ntls:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n"

	tests := []struct {
		name string
		load func() (*config.Config, error)
	}{
		{"Load resolves against the file's directory", func() (*config.Config, error) {
			return config.Load(writeFile(t, dir, "custodian.yaml", data), nil)
		}},
		{"Parse resolves against dir", func() (*config.Config, error) {
			return config.Parse([]byte(data), dir, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tt.load()
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, "tls", "cert.pem"); cfg.TLS.CertFile != want {
				t.Errorf("cert_file %q, want %q", cfg.TLS.CertFile, want)
			}
			if want := filepath.Join(dir, "secrets", "session_keys"); cfg.Session.KeysFile != want {
				t.Errorf("keys_file %q, want %q", cfg.Session.KeysFile, want)
			}
			if cfg.OIDC.ClientSecret != "file-secret" {
				t.Errorf("client secret %q, want the file's", cfg.OIDC.ClientSecret)
			}
		})
	}

	t.Run("Parse without dir leaves paths relative to the working directory", func(t *testing.T) {
		t.Parallel()
		_, err := config.Parse([]byte(data), "", nil)
		text := errorText(t, err)
		if !strings.Contains(text, "oidc.client_secret_file: open secrets/client_secret") {
			t.Errorf("error %q does not name the relative path", text)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		data    *string // nil: no file
		wantErr []string
		wantIs  error
	}{
		{name: "missing file", wantErr: []string{"config: open ", "custodian.yaml"}, wantIs: fs.ErrNotExist},
		{name: "empty file", data: ptr(""), wantErr: []string{"config: ", "custodian.yaml: file is empty"}},
		{name: "syntax error", data: ptr("public_url: [unclosed\n"), wantErr: []string{"custodian.yaml: yaml: line "}},
		{name: "unknown field", data: ptr(minimalYAML + "colour: red\n"), wantErr: []string{"custodian.yaml: colour: line 8: unknown field"}},
		{name: "two documents", data: ptr(minimalYAML + "---\n" + minimalYAML), wantErr: []string{"custodian.yaml: yaml: file holds more than one document"}},
		{name: "validation problems are prefixed too", data: ptr(edit(t, minimalYAML, "custodian\n", "\"\"\n")), wantErr: []string{"config: ", "custodian.yaml: oidc.client_id: required"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, string(rune('a'+i)), "custodian.yaml")
			if tt.data != nil {
				writeFile(t, filepath.Dir(path), "custodian.yaml", *tt.data)
			}
			_, err := config.Load(path, envFunc(testEnv()))
			text := errorText(t, err)
			for _, want := range tt.wantErr {
				if !strings.Contains(text, want) {
					t.Errorf("error %q does not contain %q", text, want)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	t.Parallel()
	key, _ := testKey(9)
	build := func() *config.Config {
		cfg := &config.Config{
			Listen:    "127.0.0.1:0",
			PublicURL: "http://localhost:8080",
			OIDC: config.OIDC{
				Issuer:       "http://127.0.0.1:9000",
				ClientID:     "demo",
				ClientSecret: "demo-secret",
			},
			Session:  config.Session{Keys: [][]byte{key}},
			Backends: []config.Backend{{Name: "catalog", URL: "http://127.0.0.1:9001", Token: config.TokenNone}},
		}
		cfg.ApplyDefaults()
		return cfg
	}
	tests := []struct {
		name    string
		modify  func(*config.Config)
		wantErr string
	}{
		{name: "valid", modify: func(*config.Config) {}},
		{name: "no keys", modify: func(c *config.Config) { c.Session.Keys = nil }, wantErr: "session.keys_file: required unless CUSTODIAN_SESSION_KEYS is set"},
		{name: "short key", modify: func(c *config.Config) { c.Session.Keys = append(c.Session.Keys, make([]byte, 16)) }, wantErr: "session.keys[1]: key is 16 bytes, want 32"},
		{name: "no client secret", modify: func(c *config.Config) { c.OIDC.ClientSecret = "" }, wantErr: "oidc.client_secret_file: required unless CUSTODIAN_OIDC_CLIENT_SECRET is set"},
		{name: "defaults not applied", modify: func(c *config.Config) {
			c.Backends = append(c.Backends, config.Backend{Name: "raw", URL: "http://raw"})
		}, wantErr: `backends[1].protocol: "" is not one of connect, grpc, grpcweb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := build()
			tt.modify(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if text := errorText(t, err); !strings.Contains(text, tt.wantErr) {
				t.Errorf("error %q does not contain %q", text, tt.wantErr)
			}
		})
	}

	t.Run("nil config", func(t *testing.T) {
		t.Parallel()
		var cfg *config.Config
		if err := cfg.Validate(); err == nil {
			t.Error("Validate on a nil Config returned nil")
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestDecodeErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []string
	}{
		{name: "flow mapping", data: "server: {read_timeout: 2s, max_body_bytes: lots, colour: red}",
			want: []string{"server.max_body_bytes: line 1: cannot unmarshal !!str `lots`", "server.colour: line 1: unknown field"}},
		{name: "sequence for a struct", data: "server: [1, 2]",
			want: []string{"server: line 1: cannot unmarshal !!seq into config.Server"}},
		{name: "block sequence for a struct", data: "oidc:\n  - issuer\n",
			want: []string{"oidc: line 2: cannot unmarshal !!seq into config.OIDC"}},
		{name: "mapping for a string", data: "public_url:\n  host: x\n",
			want: []string{"public_url: line 2: cannot unmarshal !!map into string"}},
		{name: "mapping for a duration", data: "cors:\n  max_age: {h: 2}\n",
			want: []string{"cors.max_age: line 2: must be a duration with a unit"}},
		{name: "scalar for the list of backends", data: "backends: 5",
			want: []string{"backends: line 1: cannot unmarshal !!int `5` into []config.Backend"}},
		{name: "document is a list", data: "- a\n- b\n",
			want: []string{"config: yaml: line 1: cannot unmarshal !!seq into config.Config"}},
		{name: "second backend", data: "backends:\n  - name: a\n  - name: b\n    protocl: grpc\n",
			want: []string{"backends[1].protocl: line 4: unknown field"}},
		{name: "repeated top-level key", data: "listen: :1\nlisten: :2\n",
			want: []string{`listen: line 2: mapping key "listen" already defined at line 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.data), "", envFunc(testEnv()))
			text := errorText(t, err)
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("error does not contain %q:\n%s", want, text)
				}
			}
		})
	}
}
