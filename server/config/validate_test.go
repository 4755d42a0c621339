package config_test

import (
	"encoding/base64"
	"maps"
	"strings"
	"testing"

	"github.com/custodian-bff/custodian/server/config"
)

func TestValidationRules(t *testing.T) {
	t.Parallel()
	_, goodKey := testKey(1)
	shortKey := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name       string
		old, new   string            // edit of fullYAML; old "" keeps it as is
		old2, new2 string            // a second edit, after the first
		append     string            // appended to fullYAML after the edit
		env        map[string]string // replaces testEnv() when non-nil
		wantErr    []string          // substrings; none means the config is valid
	}{
		// Valid variations, so that the rules below cannot pass by refusing
		// everything.
		{name: "full config is valid"},
		{name: "http public_url on localhost", old: "https://app.example.com", new: "http://localhost:3000"},
		{name: "http public_url on 127.0.0.1", old: "https://app.example.com", new: "http://127.0.0.1:8080"},
		{name: "http issuer on localhost", old: "https://login.example.com", new: "http://localhost:8081/realms/dev"},
		{name: "lax same_site", old: "same_site: strict", new: "same_site: lax"},
		{name: "redis store", old: "store: memory", new: "store: redis\n  redis_url: rediss://:pw@redis:6380/1"},
		{name: "redis cluster", old: "store: memory", new: "store: redis\n  redis_url: rediss://custodian@redis-1:6379\n  redis_cluster: true\n  redis_addrs: [redis-2:6379, \"[fd00::3]:6379\"]"},
		{name: "redis sentinel", old: "store: memory", new: "store: redis\n  redis_url: redis://sentinel-1:26379/2\n  redis_master_name: sessions\n  redis_addrs: [sentinel-2:26379]"},
		{name: "redis pool and timeouts", old: "store: memory", new: "store: redis\n  redis_url: redis://redis\n  redis_pool_size: 10000\n  redis_dial_timeout: 5s\n  redis_read_timeout: 200ms\n  redis_write_timeout: 3s"},
		{name: "plain cookie name on http localhost", old: "cookie_name: __Host-custodian", new: "cookie_name: sid",
			old2: "https://app.example.com", new2: "http://localhost:3000"},
		{name: "__Host- name on http 127.0.0.1", old: "https://app.example.com", new: "http://127.0.0.1:3000"},
		{name: "ipv6 trusted proxy", old: "[10.0.0.0/8]", new: "[10.0.0.0/8, \"fd00::/8\", 192.168.1.1/32]"},
		{name: "rate limits", append: rateLimitsYAML},
		{name: "rate limits off", append: "rate_limits:\n  per_ip: {rate: 0}\n  per_session: {}\n  login: {rate: 0}\n"},
		{name: "fractional and maximal rates", append: "rate_limits:\n  login: {rate: 0.01, burst: 1}\n  per_ip: {rate: 100000, burst: 100000}\n"},
		{name: "routes", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.OrderService/GetOrder, backend: orders, method: acme.orders.v1.OrderService/GetOrder, bind: {account_id: sub}}\n    - {public: web.v1.OrderService/ListOrders, backend: profiles, method: p.v1.S/M, token: client, anonymous: true}\n"},

		// Routes.
		{name: "routes without descriptors", append: "routes:\n  methods:\n    - {public: web.v1.S/M, backend: orders, method: a.v1.S/M}\n",
			wantErr: []string{"routes.descriptors: required with routes.methods"}},
		{name: "route method names", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: GetOrder, backend: orders, method: a.v1.S/M/X}\n",
			wantErr: []string{`routes.methods[0].public: "GetOrder" is not package.Service/Method`, `routes.methods[0].method: "a.v1.S/M/X" is not package.Service/Method`}},
		{name: "route twice", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: orders, method: a.v1.S/M}\n    - {public: web.v1.S/M, backend: orders, method: a.v1.S/N}\n",
			wantErr: []string{`routes.methods[1].public: "web.v1.S/M" is already routed by routes.methods[0]`}},
		{name: "route to an unknown backend", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: tickets, method: a.v1.S/M}\n",
			wantErr: []string{`routes.methods[0].backend: "tickets" is not a configured backend`}},
		{name: "route token", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: orders, method: a.v1.S/M, token: admin}\n",
			wantErr: []string{`routes.methods[0].token: "admin" is not one of user, exchange, client, none`}},
		{name: "anonymous route with the user's token", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: profiles, method: a.v1.S/M, anonymous: true}\n",
			wantErr: []string{`routes.methods[0].anonymous: a route with the "user" token policy needs a session`}},
		{name: "anonymous route with a binding", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: profiles, method: a.v1.S/M, token: none, anonymous: true, bind: {account_id: sub}}\n",
			wantErr: []string{`routes.methods[0].bind: binds claims of the session, so the route cannot be anonymous`}},
		{name: "unknown claim", append: "routes:\n  descriptors: public.binpb\n  methods:\n    - {public: web.v1.S/M, backend: profiles, method: a.v1.S/M, bind: {account_id: roles}}\n",
			wantErr: []string{`routes.methods[0].bind.account_id: "roles" is not one of sub, email, name`}},
		{name: "descriptors without routes", append: "routes:\n  descriptors: public.binpb\n",
			wantErr: []string{"routes.methods: no routes, but routes.descriptors is set"}},

		// Decoding.
		{name: "unknown field", old: "  read_timeout: 30s", new: "  read_timeout: 30s\n  read_timout: 5s",
			wantErr: []string{"server.read_timout: line 5: unknown field"}},
		{name: "unknown field in a backend", old: "    timeout: 2s", new: "    timeout: 2s\n    retries: 3",
			wantErr: []string{"backends[0].retries: line ", "unknown field"}},
		{name: "secret inline is refused", old: "  client_id: custodian", new: "  client_id: custodian\n  client_secret: x",
			wantErr: []string{"oidc.client_secret: line ", "unknown field"}},
		{name: "bad duration", old: "read_timeout: 30s", new: "read_timeout: 30x",
			wantErr: []string{`server.read_timeout: line 4: "30x" is not a duration`}},
		{name: "duration without unit", old: "    timeout: 2s", new: "    timeout: 2",
			wantErr: []string{`backends[0].timeout: line `, `"2" is not a duration`}},
		{name: "wrong type", old: "max_header_bytes: 16384", new: "max_header_bytes: lots",
			wantErr: []string{"server.max_header_bytes: line 5: cannot unmarshal !!str `lots` into int"}},
		{name: "repeated key", old: "  same_site: strict", new: "  same_site: strict\n  same_site: lax",
			wantErr: []string{"session.same_site: line ", "already defined"}},

		// Top level.
		{name: "bad listen", old: "listen: 127.0.0.1:8080", new: "listen: 8080",
			wantErr: []string{`listen: "8080" is not host:port`}},
		{name: "bad listen port", old: "listen: 127.0.0.1:8080", new: "listen: :http",
			wantErr: []string{`listen: port "http" is not a number`}},
		{name: "missing public_url", old: "public_url: https://app.example.com\n", new: "",
			wantErr: []string{"public_url: required"}},
		{name: "http public_url on a non-local host", old: "https://app.example.com", new: "http://app.example.com",
			wantErr: []string{"public_url: must be an absolute https URL (http is allowed only for localhost, 127.0.0.1 and [::1])"}},
		{name: "public_url with a path", old: "https://app.example.com", new: "https://app.example.com/app",
			wantErr: []string{`public_url: "https://app.example.com/app" has a path`}},
		{name: "tls files missing", append: "tls:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n",
			wantErr: []string{"tls.cert_file: open /nonexistent/cert.pem: no such file", "tls.key_file: open /nonexistent/key.pem: no such file"}},
		{name: "tls key_file absent", append: "tls:\n  cert_file: /nonexistent/cert.pem\n",
			wantErr: []string{"tls.key_file: required when the tls block is present"}},

		// server.
		{name: "bad trusted proxy CIDR", old: "[10.0.0.0/8]", new: "[10.0.0.0/33]",
			wantErr: []string{`server.trusted_proxies[0]: "10.0.0.0/33" is not a CIDR prefix`}},
		{name: "trusted proxy without length", old: "[10.0.0.0/8]", new: "[10.0.0.0/8, 10.1.2.3]",
			wantErr: []string{`server.trusted_proxies[1]: "10.1.2.3" is not a CIDR prefix`, "/32"}},
		{name: "trusted proxy with host bits", old: "[10.0.0.0/8]", new: "[10.1.2.3/8]",
			wantErr: []string{`server.trusted_proxies[0]: "10.1.2.3/8" has bits set`, `"10.0.0.0/8"`}},
		{name: "max_header_bytes too small", old: "max_header_bytes: 16384", new: "max_header_bytes: 100",
			wantErr: []string{"server.max_header_bytes: 100 is not between 1024 (1 KiB) and 1048576 (1 MiB)"}},
		{name: "max_body_bytes too large", old: "  read_timeout: 30s", new: "  read_timeout: 30s\n  max_body_bytes: 100000000",
			wantErr: []string{"server.max_body_bytes: 100000000 is not between"}},
		{name: "max_concurrent_streams too large", old: "max_concurrent_streams: 100", new: "max_concurrent_streams: 5000",
			wantErr: []string{"server.max_concurrent_streams: 5000 is not between 1 and 1000"}},
		{name: "negative timeout", old: "read_timeout: 30s", new: "read_timeout: -1s",
			wantErr: []string{"server.read_timeout: -1s must be positive"}},

		// oidc.
		{name: "missing issuer", old: "  issuer: https://login.example.com\n", new: "",
			wantErr: []string{"oidc.issuer: required"}},
		{name: "http issuer on a non-local host", old: "https://login.example.com", new: "http://login.example.com",
			wantErr: []string{"oidc.issuer: must be an absolute https URL (http is allowed only for localhost, 127.0.0.1 and [::1])"}},
		{name: "issuer with a query", old: "https://login.example.com", new: "https://login.example.com/?tenant=1",
			wantErr: []string{"oidc.issuer: must not have a query or fragment"}},
		{name: "missing client_id", old: "  client_id: custodian\n", new: "",
			wantErr: []string{"oidc.client_id: required"}},
		{name: "missing client secret", env: map[string]string{"CUSTODIAN_SESSION_KEYS": goodKey},
			wantErr: []string{"oidc.client_secret_file: required unless CUSTODIAN_OIDC_CLIENT_SECRET is set"}},
		{name: "client secret file missing", old: "  client_id: custodian", new: "  client_id: custodian\n  client_secret_file: /nonexistent/secret",
			env:     map[string]string{"CUSTODIAN_SESSION_KEYS": goodKey},
			wantErr: []string{"oidc.client_secret_file: open /nonexistent/secret: no such file"}},
		{name: "scopes without openid", old: "[openid, profile]", new: "[profile, email]",
			wantErr: []string{"oidc.scopes: must include openid"}},
		{name: "bad scope", old: "[openid, profile]", new: "[openid, \"pro file\"]",
			wantErr: []string{`oidc.scopes[1]: "pro file" is not a valid scope`}},
		{name: "protocol-relative logout path", old: "post_logout_redirect_path: /", new: "post_logout_redirect_path: //evil.example",
			wantErr: []string{`oidc.post_logout_redirect_path: "//evil.example" must be a path`}},

		// session.
		{name: "__Host- name with a non-secure public_url", old: "https://app.example.com", new: "http://app.example.com",
			wantErr: []string{`session.cookie_name: "__Host-" cookies require a secure public_url`, "public_url: must be an absolute https URL"}},
		{name: "__Secure- name with a non-secure public_url", old: "public_url: https://app.example.com", new: "public_url: http://10.0.0.5",
			old2: "cookie_name: __Host-custodian", new2: "cookie_name: __secure-sid",
			wantErr: []string{`session.cookie_name: "__Secure-" cookies require a secure public_url`}},
		{name: "invalid cookie name", old: "cookie_name: __Host-custodian", new: "cookie_name: \"my session\"",
			wantErr: []string{`session.cookie_name: "my session" is not a valid cookie name`}},
		{name: "bad same_site", old: "same_site: strict", new: "same_site: none",
			wantErr: []string{`session.same_site: "none" is not one of strict, lax`}},
		{name: "idle longer than absolute", old: "idle_timeout: 30m", new: "idle_timeout: 24h",
			wantErr: []string{"session.idle_timeout: 24h0m0s is longer than session.absolute_timeout (12h0m0s)"}},
		{name: "bad store", old: "store: memory", new: "store: postgres",
			wantErr: []string{`session.store: "postgres" is not one of memory, redis`}},
		{name: "redis without url", old: "store: memory", new: "store: redis",
			wantErr: []string{`session.redis_url: required when session.store is "redis"`}},
		{name: "redis url with the wrong scheme", old: "store: memory", new: "store: redis\n  redis_url: https://redis:6379",
			wantErr: []string{"session.redis_url: must be a redis:// or rediss:// URL"}},
		{name: "redis url with memory store", old: "store: memory", new: "store: memory\n  redis_url: redis://redis:6379",
			wantErr: []string{`session.redis_url: set, but session.store is "memory"`}},
		{name: "redis fields with memory store", old: "store: memory",
			new: "store: memory\n  redis_addrs: [r:6379]\n  redis_cluster: true\n  redis_master_name: m\n  redis_pool_size: 5\n  redis_dial_timeout: 1s\n  redis_read_timeout: 1s\n  redis_write_timeout: 1s",
			wantErr: []string{
				`session.redis_addrs: set, but session.store is "memory"`,
				`session.redis_cluster: set, but session.store is "memory"`,
				`session.redis_master_name: set, but session.store is "memory"`,
				`session.redis_pool_size: set, but session.store is "memory"`,
				`session.redis_dial_timeout: set, but session.store is "memory"`,
				`session.redis_read_timeout: set, but session.store is "memory"`,
				`session.redis_write_timeout: set, but session.store is "memory"`,
			}},
		{name: "redis url with a query", old: "store: memory", new: "store: redis\n  redis_url: redis://redis:6379?dial_timeout=3",
			wantErr: []string{"session.redis_url: must have no query or fragment"}},
		{name: "redis url with a bad database", old: "store: memory", new: "store: redis\n  redis_url: redis://redis:6379/sessions",
			wantErr: []string{"session.redis_url: path must be a database number"}},
		{name: "redis cluster with a database", old: "store: memory", new: "store: redis\n  redis_url: redis://redis:6379/1\n  redis_cluster: true",
			wantErr: []string{"session.redis_url: database 1: a Redis Cluster has only database 0"}},
		{name: "redis addrs alone", old: "store: memory", new: "store: redis\n  redis_url: redis://redis-1\n  redis_addrs: [redis-2:6379]",
			wantErr: []string{"session.redis_addrs: set, but neither redis_cluster nor redis_master_name is"}},
		{name: "bad redis addrs", old: "store: memory", new: "store: redis\n  redis_url: redis://redis-1\n  redis_cluster: true\n  redis_addrs: [redis-2, \":6379\", \"r:0\"]",
			wantErr: []string{`session.redis_addrs[0]: "redis-2" is not host:port`, `session.redis_addrs[1]: ":6379" is not host:port`, `session.redis_addrs[2]: "r:0" is not host:port`}},
		{name: "redis cluster and sentinel", old: "store: memory", new: "store: redis\n  redis_url: redis://redis-1\n  redis_cluster: true\n  redis_master_name: m",
			wantErr: []string{"session.redis_master_name: set with redis_cluster"}},
		{name: "bad redis pool and timeouts", old: "store: memory", new: "store: redis\n  redis_url: redis://redis\n  redis_pool_size: 10001\n  redis_dial_timeout: -1s\n  redis_read_timeout: -1ms\n  redis_write_timeout: -2s",
			wantErr: []string{
				"session.redis_pool_size: 10001 is not between 1 and 10000",
				"session.redis_dial_timeout: -1s must be positive",
				"session.redis_read_timeout: -1ms must be positive",
				"session.redis_write_timeout: -2s must be positive",
			}},
		{name: "negative max_sessions", old: "store: memory", new: "store: memory\n  max_sessions: -1",
			wantErr: []string{"session.max_sessions: -1 must be positive"}},
		{name: "wrong key length", env: map[string]string{"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret, "CUSTODIAN_SESSION_KEYS": goodKey + "," + shortKey},
			wantErr: []string{"session.keys: CUSTODIAN_SESSION_KEYS: entry 2: key is 16 bytes, want 32"}},
		{name: "key not base64", env: map[string]string{"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret, "CUSTODIAN_SESSION_KEYS": "not*base64"},
			wantErr: []string{"session.keys: CUSTODIAN_SESSION_KEYS: entry 1: key is not valid base64"}},
		{name: "env keys all blank", env: map[string]string{"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret, "CUSTODIAN_SESSION_KEYS": " , "},
			wantErr: []string{"session.keys: CUSTODIAN_SESSION_KEYS: holds no keys"}},
		{name: "missing session keys", env: map[string]string{"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret},
			wantErr: []string{"session.keys_file: required unless CUSTODIAN_SESSION_KEYS is set"}},
		{name: "refresh_skew too long", old: "store: memory", new: "store: memory\n  refresh_skew: 2h",
			wantErr: []string{"session.refresh_skew: 2h0m0s is not between 0s and 1h0m0s"}},

		// cors.
		{name: "star origin", old: "[https://www.example.com]", new: "[\"*\"]",
			wantErr: []string{`cors.allowed_origins[0]: "*" is refused because credentials are always allowed`}},
		{name: "origin with a path", old: "[https://www.example.com]", new: "[https://www.example.com, https://shop.example.com/cart]",
			wantErr: []string{`cors.allowed_origins[1]: "https://shop.example.com/cart" has a path`}},
		{name: "origin in upper case", old: "[https://www.example.com]", new: "[https://WWW.example.com]",
			wantErr: []string{`cors.allowed_origins[0]: "https://WWW.example.com" must be lower case`}},
		{name: "origin without scheme", old: "[https://www.example.com]", new: "[www.example.com]",
			wantErr: []string{`cors.allowed_origins[0]: "www.example.com" is not an origin`}},
		{name: "max_age too long", old: "max_age: 2h", new: "max_age: 48h",
			wantErr: []string{"cors.max_age: 48h0m0s is not between 1s and 24h0m0s"}},

		// telemetry.
		{name: "telemetry: everything on", append: "telemetry:\n  access_log: false\n  traces: {exporter: otlp, protocol: grpc, endpoint: \"http://collector:4317\", sample_ratio: 0.1}\n  admin: {listen: \"127.0.0.1:9090\", pprof: true}\n"},
		{name: "telemetry: sampling none and all", append: "telemetry:\n  traces: {exporter: none, protocol: http/protobuf, sample_ratio: 0}\n"},
		{name: "telemetry: unknown exporter", append: "telemetry:\n  traces: {exporter: jaeger}\n",
			wantErr: []string{`telemetry.traces.exporter: "jaeger" is not otlp or none`}},
		{name: "telemetry: unknown protocol", append: "telemetry:\n  traces: {protocol: http/json}\n",
			wantErr: []string{`telemetry.traces.protocol: "http/json" is not grpc or http/protobuf`}},
		{name: "telemetry: endpoint without scheme", append: "telemetry:\n  traces: {endpoint: \"collector:4318\"}\n",
			wantErr: []string{`telemetry.traces.endpoint: "collector:4318" is not an http(s) URL`}},
		{name: "telemetry: sample ratio above 1", append: "telemetry:\n  traces: {sample_ratio: 10}\n",
			wantErr: []string{"telemetry.traces.sample_ratio: 10 is not between 0 and 1"}},
		{name: "telemetry: sample ratio not a number", append: "telemetry:\n  traces: {sample_ratio: .nan}\n",
			wantErr: []string{"telemetry.traces.sample_ratio: NaN is not between 0 and 1"}},
		{name: "telemetry: pprof without admin listener", append: "telemetry:\n  admin: {pprof: true}\n",
			wantErr: []string{"telemetry.admin.pprof: needs telemetry.admin.listen"}},
		{name: "telemetry: admin listen not host:port", append: "telemetry:\n  admin: {listen: \"9090\"}\n",
			wantErr: []string{`telemetry.admin.listen: "9090" is not host:port`}},
		{name: "telemetry: admin on the public address", append: "telemetry:\n  admin: {listen: \"127.0.0.1:8080\"}\n",
			wantErr: []string{"telemetry.admin.listen: is the public listen address"}},

		// rate_limits.
		{name: "negative rate", append: "rate_limits:\n  per_ip: {rate: -1, burst: 10}\n",
			wantErr: []string{"rate_limits.per_ip.rate: -1 is not between 0 (off) and 100000 requests a second"}},
		{name: "rate too high", append: "rate_limits:\n  per_session: {rate: 1e6, burst: 10}\n",
			wantErr: []string{"rate_limits.per_session.rate: 1e+06 is not between 0 (off) and 100000"}},
		{name: "rate not a number", append: "rate_limits:\n  login: {rate: .nan, burst: 10}\n",
			wantErr: []string{"rate_limits.login.rate: NaN is not between"}},
		{name: "positive rate without burst", append: "rate_limits:\n  login: {rate: 2}\n",
			wantErr: []string{"rate_limits.login.burst: 0 is not between 1 and 100000; a positive rate needs a burst"}},
		{name: "burst too large", append: "rate_limits:\n  per_ip: {rate: 10, burst: 200000}\n",
			wantErr: []string{"rate_limits.per_ip.burst: 200000 is not between 1 and 100000"}},
		{name: "burst without rate", append: "rate_limits:\n  per_ip: {burst: 500}\n",
			wantErr: []string{"rate_limits.per_ip.burst: 500 is set, but rate 0 turns this limit off"}},
		{name: "method without a service package", append: "rate_limits:\n  methods:\n    /Service/Method: {rate: 1, burst: 1}\n",
			wantErr: []string{`rate_limits.methods["/Service/Method"]: "/Service/Method" is not a procedure such as`}},
		{name: "method without a leading slash", append: "rate_limits:\n  methods:\n    acme.v1.S/M: {rate: 1, burst: 1}\n",
			wantErr: []string{`rate_limits.methods["acme.v1.S/M"]: "acme.v1.S/M" is not a procedure`}},
		{name: "method with an extra segment", append: "rate_limits:\n  methods:\n    /acme.v1.S/M/x: {rate: 1, burst: 1}\n",
			wantErr: []string{`rate_limits.methods["/acme.v1.S/M/x"]: `}},
		{name: "method with an empty package part", append: "rate_limits:\n  methods:\n    /acme..S/M: {rate: 1, burst: 1}\n",
			wantErr: []string{`rate_limits.methods["/acme..S/M"]: `}},
		{name: "method limit without burst", append: "rate_limits:\n  methods:\n    /acme.v1.S/M: {rate: 1}\n",
			wantErr: []string{`rate_limits.methods["/acme.v1.S/M"].burst: 0 is not between 1 and 100000`}},
		{name: "unknown field in a rate limit", append: "rate_limits:\n  per_ip: {rate: 1, burst: 1, period: 1s}\n",
			wantErr: []string{"rate_limits.per_ip.period: line ", "unknown field"}},

		// backends.
		{name: "empty backends", old: fullYAML[strings.Index(fullYAML, "backends:"):], new: "backends: []\n",
			wantErr: []string{"backends: at least one backend is required"}},
		{name: "bad protocol", old: "protocol: grpc", new: "protocol: http",
			wantErr: []string{`backends[1].protocol: "http" is not one of connect, grpc, grpcweb`}},
		{name: "bad token policy", old: "token: user", new: "token: bearer",
			wantErr: []string{`backends[0].token: "bearer" is not one of user, exchange, client, none`}},
		{name: "duplicate backend name", old: "name: orders", new: "name: profiles",
			wantErr: []string{`backends[1].name: "profiles" is already used by backends[0]`}},
		{name: "bad backend name", old: "name: orders", new: "name: Orders",
			wantErr: []string{`backends[1].name: "Orders" must match [a-z][a-z0-9-]{0,31}`}},
		{name: "missing backend name", old: "  - name: orders\n    url:", new: "  - url:",
			wantErr: []string{"backends[1].name: required"}},
		{name: "exchange without audience", old: "    audience: acme-orders\n", new: "",
			wantErr: []string{`backends[1].audience: required when token is "exchange"`}},
		{name: "audience with token none", old: "token: exchange", new: "token: none",
			wantErr: []string{`backends[1].audience: not used when token is "none"`}},
		{name: "relative backend url", old: "url: http://orders:9090", new: "url: orders:9090",
			wantErr: []string{`backends[1].url: "orders:9090" is not an absolute http or https URL`}},
		{name: "backend url with a query", old: "url: http://orders:9090", new: "url: http://orders:9090/?x=1",
			wantErr: []string{"backends[1].url: must not have a query or fragment"}},
		{name: "backend timeout too long", old: "timeout: 2s", new: "timeout: 10m",
			wantErr: []string{"backends[0].timeout: 10m0s is not between 1ms and 5m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv()
			if tt.env != nil {
				env = maps.Clone(tt.env)
			}
			data := edit(t, edit(t, fullYAML, tt.old, tt.new), tt.old2, tt.new2) + tt.append
			_, err := config.Parse([]byte(data), "", envFunc(env))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			text := errorText(t, err)
			for _, want := range tt.wantErr {
				if !strings.Contains(text, want) {
					t.Errorf("error does not contain %q:\n%s", want, text)
				}
			}
		})
	}
}

// rateLimitsYAML is a valid rate_limits block that sets every field.
const rateLimitsYAML = `rate_limits:
  per_ip: {rate: 20, burst: 40}
  per_session: {rate: 10, burst: 20}
  login: {rate: 0.2, burst: 5}
  methods:
    /acme.storefront.v1.ProductService/ListProducts: {rate: 5, burst: 10}
    /custodian.v1.AuthService/FinishLogin: {rate: 0}
`

func TestSeveralProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	data := edit(t, fullYAML, "protocol: grpc", "protocol: http")
	data = edit(t, data, "same_site: strict", "same_site: none")
	data = edit(t, data, "[https://www.example.com]", "[\"*\"]")
	data = edit(t, data, "https://login.example.com", "http://login.example.com")
	_, err := config.Parse([]byte(data), "", envFunc(testEnv()))
	text := errorText(t, err)
	want := []string{
		"config: oidc.issuer: must be an absolute https URL",
		"config: session.same_site: ",
		"config: cors.allowed_origins[0]: ",
		"config: backends[1].protocol: ",
	}
	lines := strings.Split(text, "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), text)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d is %q, want it to start with %q", i, lines[i], w)
		}
	}
	if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != len(want) {
		t.Errorf("error does not unwrap to %d errors", len(want))
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	// A key of the wrong length that is still valid base64, and a Redis URL
	// carrying a password: neither may be echoed.
	wrongKey := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	tests := []struct {
		name    string
		data    string
		env     map[string]string
		secrets []string
	}{
		{
			name: "client secret and keys from env with other problems",
			data: edit(t, fullYAML, "protocol: grpc", "protocol: http"),
			env: map[string]string{
				"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret,
				"CUSTODIAN_SESSION_KEYS":       wrongKey,
				"CUSTODIAN_REDIS_PASSWORD":     testRedisPassword,
			},
			secrets: []string{testClientSecret, wrongKey, strings.TrimRight(wrongKey, "="), testRedisPassword},
		},
		{
			name:    "redis url with a password and a bad scheme",
			data:    edit(t, fullYAML, "store: memory", "store: redis\n  redis_url: http://user:"+testRedisPassword+"@redis:6379"),
			env:     testEnv(),
			secrets: []string{testRedisPassword, testClientSecret},
		},
		{
			name:    "redis url with a password that does not parse",
			data:    edit(t, fullYAML, "store: memory", "store: redis\n  redis_url: \"redis://:"+testRedisPassword+"@redis:port\""),
			env:     testEnv(),
			secrets: []string{testRedisPassword},
		},
		{
			name:    "redis url with a password and a query",
			data:    edit(t, fullYAML, "store: memory", "store: redis\n  redis_url: redis://:"+testRedisPassword+"@redis:6379/x?a=b"),
			env:     testEnv(),
			secrets: []string{testRedisPassword},
		},
		{
			name:    "redis url with a password given with the memory store",
			data:    edit(t, fullYAML, "store: memory", "store: memory\n  redis_url: redis://:"+testRedisPassword+"@redis:6379"),
			env:     testEnv(),
			secrets: []string{testRedisPassword},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.data), "", envFunc(tt.env))
			text := errorText(t, err)
			for _, secret := range tt.secrets {
				if strings.Contains(text, secret) {
					t.Errorf("error reveals a secret:\n%s", text)
				}
			}
		})
	}
}
