package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
