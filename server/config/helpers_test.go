package config_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secret values used by the tests; none may ever appear in an error.
const (
	testClientSecret  = "s3cr3t-client-value"
	testRedisPassword = "s3cr3t-redis-value"
)

// minimalYAML is the smallest valid configuration, given the secrets in
// testEnv.
const minimalYAML = `public_url: https://app.example.com
oidc:
  issuer: https://login.example.com
  client_id: custodian
backends:
  - name: profiles
    url: http://profiles:8080
`

// fullYAML is a valid configuration that sets most fields, for cases that
// edit one of them.
const fullYAML = `listen: 127.0.0.1:8080
public_url: https://app.example.com
server:
  read_timeout: 30s
  max_header_bytes: 16384
  max_concurrent_streams: 100
  trusted_proxies: [10.0.0.0/8]
oidc:
  issuer: https://login.example.com
  client_id: custodian
  scopes: [openid, profile]
  post_logout_redirect_path: /
session:
  cookie_name: __Host-custodian
  same_site: strict
  idle_timeout: 30m
  absolute_timeout: 12h
  store: memory
cors:
  allowed_origins: [https://www.example.com]
  max_age: 2h
backends:
  - name: profiles
    url: http://profiles:8080
    protocol: connect
    token: user
    timeout: 2s
  - name: orders
    url: http://orders:9090
    protocol: grpc
    token: exchange
    audience: acme-orders
`

// testKey returns a 32-byte key filled with b, and its standard base64.
func testKey(b byte) ([]byte, string) {
	key := bytes.Repeat([]byte{b}, 32)
	return key, base64.StdEncoding.EncodeToString(key)
}

// envFunc returns a getenv over m.
func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testEnv returns an environment holding a client secret and one session key.
func testEnv() map[string]string {
	_, key := testKey(1)
	return map[string]string{
		"CUSTODIAN_OIDC_CLIENT_SECRET": testClientSecret,
		"CUSTODIAN_SESSION_KEYS":       key,
	}
}

// edit replaces old with new in s, failing the test if old is absent so
// that a stale case cannot pass by accident.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if old == "" {
		return s
	}
	if !strings.Contains(s, old) {
		t.Fatalf("edit: %q not found in the base configuration", old)
	}
	return strings.Replace(s, old, new, 1)
}

// writeFile writes data to dir/name, creating parent directories.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// errorText returns err's message, failing the test if err is nil.
func errorText(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want one")
	}
	return err.Error()
}
