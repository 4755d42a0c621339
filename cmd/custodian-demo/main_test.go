package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/config"
)

func TestRefusesBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no out", nil, "--out is required"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"bad log level", []string{"--out", t.TempDir(), "--log-level", "loud"}, "--log-level"},
		{"bad lifetime", []string{"--out", t.TempDir(), "--access-token-lifetime", "soon"}, "access-token-lifetime"},
		{"argument", []string{"--out", t.TempDir(), "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			if code := run(context.Background(), c.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), c.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// lineWriter hands the first line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines chan string
	sent  bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok && !w.sent {
		w.sent = true
		w.lines <- line
	}
	return len(p), nil
}

func TestServesUntilCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := t.TempDir()
	stdout := &lineWriter{lines: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--out", out,
			"--gateway", "http://localhost:18081", "--gateway", "http://localhost:18082",
			"--redis-url", "redis://127.0.0.1:6379", "--access-token-lifetime", "10s"}, stdout, io.Discard)
	}()
	var ready Ready
	select {
	case line := <-stdout.lines:
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			t.Fatalf("ready line %q: %v", line, err)
		}
	case code := <-done:
		t.Fatalf("exited with %d before it was ready", code)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30s")
	}
	if len(ready.Configs) != 2 {
		t.Fatalf("configs %v, want 2", ready.Configs)
	}
	for i, path := range ready.Configs {
		cfg, err := config.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OIDC.Issuer != ready.Issuer || cfg.Session.Store != config.StoreRedis {
			t.Errorf("config %d: issuer %q, store %q", i+1, cfg.OIDC.Issuer, cfg.Session.Store)
		}
	}
	res, err := http.Get(ready.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("discovery: %s", res.Status)
	}
	res, err = http.Get(ready.Admin + "token-requests")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("token-requests: %s", res.Status)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after cancel, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after cancel")
	}
}

// TestCanned checks --canned: the ready line says so, and the
// configuration's backends are the canned ones the controls count.
func TestCanned(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineWriter{lines: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--out", t.TempDir(), "--canned"}, stdout, io.Discard)
	}()
	var ready Ready
	select {
	case line := <-stdout.lines:
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			t.Fatalf("ready line %q: %v", line, err)
		}
	case code := <-done:
		t.Fatalf("exited with %d before it was ready", code)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30s")
	}
	if !ready.Canned || len(ready.Configs) != 1 {
		t.Fatalf("ready line %+v, want canned and one configuration", ready)
	}
	cfg, err := config.Load(ready.Configs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(ready.Admin + "canned")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var stats map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	for _, b := range cfg.Backends {
		if _, ok := stats[b.Name]; !ok {
			t.Errorf("backend %s has no canned counters: %v", b.Name, stats)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after cancel, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after cancel")
	}
}
