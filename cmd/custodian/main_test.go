package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRefusesBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	valid := `public_url: https://app.example.com
oidc:
  issuer: https://id.example.com
  client_id: custodian
  client_secret_file: secret
session:
  keys_file: keys
backends:
  - name: catalog
    url: https://catalog.internal.example
`
	write("secret", "s3cr3t-value\n")
	write("keys", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"bad log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.yaml")}, 1, "absent.yaml"},
		{"unknown field", []string{"--config", write("unknown.yaml", valid+"colour: blue\n")}, 1, "colour"},
		{"bad protocol", []string{"--config", write("protocol.yaml", strings.Replace(valid, "url: https://catalog", "protocol: http\n    url: https://catalog", 1))}, 1, "backends[0].protocol"},
		{"bad duration", []string{"--config", write("duration.yaml", valid+"server:\n  idle_timeout: soon\n")}, 1, "idle_timeout"},
		{"not yaml", []string{"--config", write("binary.yaml", "\x00\x01\x02: [")}, 1, "binary.yaml"},
		{"demo flag with a configuration", []string{"--config", write("valid.yaml", valid), "--access-token-lifetime", "5s"}, 2, "--access-token-lifetime is for the demo"},
		{"public url not an origin", []string{"--config", write("valid2.yaml", valid), "--addr", "127.0.0.1:0", "--public-url", "ftp://x"}, 1, "public_url"},
		{"bad trusted proxy", []string{"--config", write("valid3.yaml", valid), "--addr", "127.0.0.1:0", "--trusted-proxies", "10.0.0.0/99"}, 1, "trusted_proxies"},
		{"stray argument", []string{"serve"}, 2, "unexpected arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			code := run(context.Background(), c.args, &stderr)
			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr does not mention %q:\n%s", c.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "s3cr3t-value") || strings.Contains(stderr.String(), "panic") {
				t.Errorf("stderr leaks a secret or panics:\n%s", stderr.String())
			}
		})
	}
}

// TestDemoRunsAndDrains starts the demo as a user would, waits until it says
// where it listens, checks it is ready, then stops it like SIGTERM would.
func TestDemoRunsAndDrains(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, logWriter := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--addr", "127.0.0.1:0", "--log-json"}, logWriter)
		logWriter.Close()
	}()
	listen := ""
	lines := bufio.NewScanner(logs)
	for lines.Scan() {
		var entry struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
			URL    string `json:"url"`
		}
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "custodian is listening" {
			listen = entry.Listen
			if !strings.HasPrefix(entry.URL, "http://localhost:") {
				t.Errorf("demo public URL %q, want http://localhost:PORT", entry.URL)
			}
			break
		}
	}
	if listen == "" {
		t.Fatalf("the demo never said it was listening (exit %d)", <-exit)
	}
	go func() { _, _ = io.Copy(io.Discard, logs) }()
	for _, path := range []string{"/readyz", "/demo/idp/.well-known/openid-configuration"} {
		res, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", path, res.StatusCode)
		}
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit code %d after shutdown, want 0", code)
	}
}

// TestDemoBehindAnotherOrigin runs the demo as the Next.js example does:
// browsers reach it through another origin (--public-url), a second origin
// may call it (--allowed-origins), and the address in front is a trusted
// proxy. The gateway must speak of the public URL everywhere a browser goes.
func TestDemoBehindAnotherOrigin(t *testing.T) {
	t.Parallel()
	const public, other = "http://localhost:3999", "http://localhost:5173"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, logWriter := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--addr", "127.0.0.1:0", "--log-json", "--public-url", public,
			"--allowed-origins", other, "--trusted-proxies", "127.0.0.1/32", "--access-token-lifetime", "3s"}, logWriter)
		logWriter.Close()
	}()
	listen := ""
	lines := bufio.NewScanner(logs)
	for lines.Scan() {
		var entry struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
			URL    string `json:"url"`
		}
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "custodian is listening" {
			listen = entry.Listen
			if entry.URL != public {
				t.Errorf("public URL %q, want %q", entry.URL, public)
			}
			break
		}
	}
	if listen == "" {
		t.Fatalf("the demo never said it was listening (exit %d)", <-exit)
	}
	go func() { _, _ = io.Copy(io.Discard, logs) }()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	res, err := client.Post("http://"+listen+"/custodian.v1.SessionService/GetSession", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"loginUrl":"`+public+`/auth/login"`) {
		t.Errorf("GetSession: %d %s, want a signed-out answer with the login URL on %s", res.StatusCode, body, public)
	}

	res, err = client.Get("http://" + listen + "/auth/login?return_to=%2Fdashboard")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, public+"/auth/login?return_to=%2Fdashboard") {
		t.Errorf("login on the listen address: %d to %q, want 303 to %s/auth/login", res.StatusCode, loc, public)
	}

	for origin, allowed := range map[string]bool{other: true, "http://evil.example": false} {
		req, _ := http.NewRequest(http.MethodOptions, "http://"+listen+"/custodian.v1.SessionService/GetSession", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, allowed=%v", origin, res.Header.Get("Access-Control-Allow-Origin"), allowed)
		}
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit code %d after shutdown, want 0", code)
	}
}

// TestTuneRuntime checks the garbage collector's defaults and that GOGC
// set in the environment wins.
func TestTuneRuntime(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	cases := []struct {
		name string
		gogc string
		want int
	}{
		{name: "GOGC unset", want: defaultGOGC},
		{name: "GOGC set", gogc: "150", want: 150},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(150) // as the runtime would from GOGC=150
			tuneRuntime(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}, slog.New(slog.DiscardHandler))
			if got := debug.SetGCPercent(150); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}
