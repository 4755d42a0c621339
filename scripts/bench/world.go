package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// startTimeout bounds how long custodian-demo and the gateway may take to
// be ready.
const startTimeout = 30 * time.Second

// world is one backend mode's processes: custodian-demo (the provider and
// the backends, demo or canned) and the gateway alone in its own process,
// with alice signed in.
type world struct {
	mode    string
	dir     string // temporary: configurations, secrets, logs
	demo    *process
	gateway *process
	public  string // the gateway's public URL, http://localhost:PORT
	listen  string // where wrk reaches it, http://127.0.0.1:PORT
	admin   string // custodian-demo's controls (demo.AdminPath)
	config  gatewayConfig
	cookie  string // alice's session cookie value
	floor   *userToken
}

// gatewayConfig is what the harness reads from the configuration
// custodian-demo writes.
type gatewayConfig struct {
	OIDC struct {
		Issuer           string `yaml:"issuer"`
		ClientID         string `yaml:"client_id"`
		ClientSecretFile string `yaml:"client_secret_file"`
	} `yaml:"oidc"`
	Backends []struct {
		Name     string `yaml:"name"`
		URL      string `yaml:"url"`
		Audience string `yaml:"audience"`
	} `yaml:"backends"`
}

// backend returns the URL and audience of the backend named name.
func (c gatewayConfig) backend(name string) (url, audience string, err error) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b.URL, b.Audience, nil
		}
	}
	return "", "", fmt.Errorf("the configuration has no backend %q", name)
}

// startWorld starts a world in mode; close it with close, also on error.
func startWorld(ctx context.Context, bins binaries, mode string, progress func(string, ...any)) (w *world, err error) {
	dir, err := os.MkdirTemp("", "custodian-bench-"+mode+"-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	w = &world{mode: mode, dir: dir}
	defer func() {
		if err != nil {
			err = w.withLogs(err)
			w.close()
			w = nil
		}
	}()
	port, err := freePort()
	if err != nil {
		return w, err
	}
	w.public, w.listen = "http://localhost:"+port, "http://127.0.0.1:"+port

	// The demo world writes gateway-1.yaml and its secrets into dir, then
	// prints one JSON line.
	args := []string{"--addr", "127.0.0.1:0", "--out", dir, "--gateway", w.public, "--log-json"}
	if mode == modeCanned {
		args = append(args, "--canned")
	}
	readyFile := filepath.Join(dir, "ready.json")
	if w.demo, err = startProcess("custodian-demo", bins.demo, args, filepath.Join(dir, "demo.log"), readyFile); err != nil {
		return w, err
	}
	var ready struct {
		Admin   string   `json:"admin"`
		Configs []string `json:"configs"`
		Canned  bool     `json:"canned"`
	}
	if err := waitFor(ctx, w.demo, func() (bool, error) { return readLine(readyFile, &ready) }); err != nil {
		return w, err
	}
	if len(ready.Configs) != 1 || ready.Canned != (mode == modeCanned) {
		return w, fmt.Errorf("custodian-demo's ready line is not what was asked for: %+v", ready)
	}
	w.admin = ready.Admin

	config, err := w.writeConfig(ready.Configs[0], bins)
	if err != nil {
		return w, err
	}
	if w.gateway, err = startProcess("custodian", bins.gateway,
		[]string{"--config", config, "--addr", "127.0.0.1:" + port, "--log-json"},
		filepath.Join(dir, "gateway.log"), ""); err != nil {
		return w, err
	}
	// The gateway logs where it listens once it is ready.
	var listening string
	err = waitFor(ctx, w.gateway, func() (bool, error) {
		listening = listenLogged(w.gateway.log)
		return listening != "", nil
	})
	if err != nil {
		return w, err
	}
	if listening != "127.0.0.1:"+port {
		return w, fmt.Errorf("the gateway listens at %s, want 127.0.0.1:%s", listening, port)
	}
	progress("bench: [%s] gateway (pid %d) at %s, custodian-demo (pid %d); files in %s", mode, w.gateway.pid(), w.listen, w.demo.pid(), dir)

	if w.cookie, err = signIn(ctx, w.public, "alice", "demo"); err != nil {
		return w, err
	}
	w.floor = &userToken{world: w, user: "alice", password: "demo", backend: "orders"}
	return w, nil
}

// writeConfig writes the gateway's configuration: custodian-demo's,
// followed with --routes by the routes section of
// examples/routes/custodian.yaml, whose descriptor set it copies next to it.
func (w *world) writeConfig(base string, bins binaries) (string, error) {
	data, err := os.ReadFile(base)
	if err != nil {
		return "", fmt.Errorf("custodian-demo's configuration: %w", err)
	}
	if err := yaml.Unmarshal(data, &w.config); err != nil {
		return "", fmt.Errorf("custodian-demo's configuration %s: %w", base, err)
	}
	if bins.descriptors != "" {
		example, err := os.ReadFile(filepath.Join(bins.root, "examples", "routes", "custodian.yaml"))
		if err != nil {
			return "", fmt.Errorf("the routes example: %w", err)
		}
		i := bytes.Index(example, []byte("\nroutes:\n"))
		if i < 0 {
			return "", errors.New("examples/routes/custodian.yaml has no top-level `routes:` line")
		}
		data = append(append(data, "\n# The routes of examples/routes/custodian.yaml.\n"...), example[i+1:]...)
		set, err := os.ReadFile(bins.descriptors)
		if err != nil {
			return "", fmt.Errorf("the descriptor set: %w", err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, "public.binpb"), set, 0o600); err != nil {
			return "", fmt.Errorf("the descriptor set: %w", err)
		}
	}
	path := filepath.Join(w.dir, "bench.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("the gateway's configuration: %w", err)
	}
	return path, nil
}

// cannedForwarded returns how many requests the canned backends have
// forwarded to the demo backends so far: each one they had no answer for.
func (w *world) cannedForwarded(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.admin+"canned", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("canned backends' counters: %w", err)
	}
	defer res.Body.Close()
	var stats map[string]struct {
		Forwarded int64 `json:"forwarded"`
	}
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		return 0, fmt.Errorf("canned backends' counters: %w", err)
	}
	var n int64
	for _, s := range stats {
		n += s.Forwarded
	}
	return n, nil
}

// close stops both processes and removes the directory.
func (w *world) close() {
	w.gateway.stop()
	w.demo.stop()
	_ = os.RemoveAll(w.dir) // temporary; nothing to do if it fails
}

// withLogs adds the tails of both logs to err, since they are about to be
// removed.
func (w *world) withLogs(err error) error {
	for _, p := range []*process{w.gateway, w.demo} {
		if p != nil {
			err = fmt.Errorf("%w\n--- %s log (tail) ---\n%s", err, p.name, p.tail(4<<10))
		}
	}
	return err
}

// waitFor polls ready until it says yes, p exits, ctx ends or
// startTimeout passes.
func waitFor(ctx context.Context, p *process, ready func() (bool, error)) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ok, err := ready()
		switch {
		case err != nil:
			return err
		case ok:
			return nil
		case p.exited():
			return fmt.Errorf("%s exited before it was ready", p.name)
		case time.Now().After(deadline):
			return fmt.Errorf("%s not ready within %v", p.name, startTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readLine decodes the first line of path into v once it is whole.
func readLine(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	line, _, whole := bytes.Cut(data, []byte("\n"))
	if !whole {
		return false, nil
	}
	if err := json.Unmarshal(line, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// listenLogged returns the address of the gateway's "custodian is
// listening" JSON log line in log, "" before it is written.
func listenLogged(log string) string {
	f, err := os.Open(log)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"custodian is listening"`) {
			continue
		}
		var line struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "custodian is listening" {
			return line.Listen
		}
	}
	return ""
}

// freePort returns a port free on 127.0.0.1 a moment ago: the gateway's
// public URL, which custodian-demo registers at the provider, must be known
// before the gateway starts.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return port, nil
}
