package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	// libfloor serves benchfloor (the libfloor, libdash and libsession
	// paths), started at its first use.
	libfloor *process
	// libfloorToken is the bearer the library floor forwards to each of
	// its backends.
	libfloorToken *userToken

	port       string   // the gateway's, kept across restarts
	bins       binaries // what the gateway is started from
	configPath string   // the gateway's configuration (writeConfig)
	// variant is the running gateway's telemetry (--telemetry);
	// gatewayAdmin is its admin listener's address, with on.
	variant      string
	gatewayAdmin string
	started      int // gateways started so far, for their logs' names
	// sink receives the on variant's traces; tel counts what the on
	// gateways sent. Both nil unless on is measured.
	sink *traceSink
	tel  *telemetryReport
	// profileDir receives a CPU profile of the gateway per measured run
	// (--profile); the gateway then has an admin listener with pprof.
	profileDir string
	// metrics gives the gateway an admin listener whatever its telemetry,
	// for its /metrics (--soak reads its heap and goroutines there).
	metrics bool
}

// gatewayConfig is what the harness reads from the configuration
// custodian-demo writes.
type gatewayConfig struct {
	OIDC struct {
		Issuer           string `yaml:"issuer"`
		ClientID         string `yaml:"client_id"`
		ClientSecretFile string `yaml:"client_secret_file"`
	} `yaml:"oidc"`
	Backends []configBackend `yaml:"backends"`
}

// configBackend is a backend of the configuration.
type configBackend struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Protocol string `yaml:"protocol"`
	Audience string `yaml:"audience"`
}

// find returns the backend named name.
func (c gatewayConfig) find(name string) (configBackend, error) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b, nil
		}
	}
	return configBackend{}, fmt.Errorf("the configuration has no backend %q", name)
}

// backend returns the URL and audience of the backend named name.
func (c gatewayConfig) backend(name string) (url, audience string, err error) {
	b, err := c.find(name)
	return b.URL, b.Audience, err
}

// startWorld starts a world in mode, its gateway with the telemetry of
// variant (traces to sink with on), and with an admin listener if metrics;
// close it with close, also on error.
func startWorld(ctx context.Context, bins binaries, mode, variant string, sink *traceSink, profile string, metrics bool, sessionIdle time.Duration, progress func(string, ...any)) (w *world, err error) {
	dir, err := os.MkdirTemp("", "custodian-bench-"+mode+"-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	w = &world{mode: mode, dir: dir, bins: bins, sink: sink, profileDir: profile, metrics: metrics}
	if sink != nil {
		ratio, _ := strconv.ParseFloat(sampleRatio, 64)
		w.tel = &telemetryReport{SampleRatio: ratio}
	}
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
	w.port = port
	w.public, w.listen = "http://localhost:"+port, "http://127.0.0.1:"+port

	// The demo world writes gateway-1.yaml and its secrets into dir, then
	// prints one JSON line.
	args := []string{"--addr", "127.0.0.1:0", "--out", dir, "--gateway", w.public, "--log-json"}
	if mode == modeCanned {
		args = append(args, "--canned")
	}
	readyFile := filepath.Join(dir, "ready.json")
	if w.demo, err = startProcess("custodian-demo", bins.demo, args, nil, filepath.Join(dir, "demo.log"), readyFile); err != nil {
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

	if w.configPath, err = w.writeConfig(ready.Configs[0], bins); err != nil {
		return w, err
	}
	if sessionIdle > 0 {
		if err := w.setSessionIdle(sessionIdle); err != nil {
			return w, err
		}
	}
	w.floor = &userToken{world: w, user: "alice", password: "demo", backends: []string{"orders"}}
	w.libfloorToken = &userToken{world: w, user: "alice", password: "demo", backends: []string{"orders", "profiles", "loyalty"}}
	if err := w.startGateway(ctx, variant); err != nil {
		return w, err
	}
	progress("bench: [%s] gateway (pid %d, telemetry %s) at %s, custodian-demo (pid %d); files in %s", mode, w.gateway.pid(), variant, w.listen, w.demo.pid(), dir)
	return w, nil
}

// startGateway starts the gateway with the telemetry of variant, on the
// world's port, waits until it listens, and signs alice in.
func (w *world) startGateway(ctx context.Context, variant string) (err error) {
	config := w.configPath
	if variant == telemetryNoLog {
		data, err := os.ReadFile(w.configPath)
		if err == nil {
			data, err = withoutAccessLog(data)
		}
		if err != nil {
			return fmt.Errorf("the configuration without access log: %w", err)
		}
		config = strings.TrimSuffix(w.configPath, ".yaml") + "-nolog.yaml"
		if err := os.WriteFile(config, data, 0o600); err != nil {
			return fmt.Errorf("the configuration without access log: %w", err)
		}
	}
	endpoint := ""
	if variant == telemetryOn {
		if w.sink == nil {
			return errors.New("telemetry on without a trace sink")
		}
		endpoint = w.sink.endpoint()
	}
	w.started++
	args := append([]string{"--config", config, "--addr", "127.0.0.1:" + w.port, "--log-json"}, gatewayArgs(variant, w.profileDir != "", w.metrics)...)
	log := filepath.Join(w.dir, fmt.Sprintf("gateway-%d-%s.log", w.started, variant))
	if w.gateway, err = startProcess("custodian", w.bins.gateway, args, gatewayEnv(variant, endpoint), log, ""); err != nil {
		return err
	}
	w.variant, w.gatewayAdmin = variant, ""
	// The gateway logs where it listens once it is ready.
	var listening listenLine
	err = waitFor(ctx, w.gateway, func() (bool, error) {
		listening = listenLogged(w.gateway.log)
		return listening.Listen != "", nil
	})
	if err != nil {
		return err
	}
	if listening.Listen != "127.0.0.1:"+w.port {
		return fmt.Errorf("the gateway listens at %s, want 127.0.0.1:%s", listening.Listen, w.port)
	}
	if (listening.Admin != "") != hasAdmin(variant, w.profileDir != "", w.metrics) {
		return fmt.Errorf("the gateway with telemetry %s has admin listener %q", variant, listening.Admin)
	}
	w.gatewayAdmin = listening.Admin
	if w.cookie, err = signIn(ctx, w.public, "alice", "demo"); err != nil {
		return err
	}
	return nil
}

// stopGateway stops the gateway, which flushes its spans as it goes; with
// on, it first scrapes its metrics a last time to learn how many calls it
// answered.
func (w *world) stopGateway(ctx context.Context) error {
	var err error
	if w.gatewayAdmin != "" && w.tel != nil && !w.gateway.exited() {
		var st scrapeStats
		if st, err = scrapeMetrics(ctx, w.gatewayAdmin); err == nil {
			w.tel.GatewayCalls += st.Calls
			w.tel.Scrapes++
			w.tel.ScrapeBytes, w.tel.ScrapeSeries = st.Bytes, st.Series
		}
	}
	w.gateway.stop()
	w.gatewayAdmin = ""
	return err
}

// scrape fetches the running gateway's /metrics, as Prometheus would,
// when it has an admin listener.
func (w *world) scrape(ctx context.Context) error {
	if w.gatewayAdmin == "" || w.tel == nil {
		return nil
	}
	st, err := scrapeMetrics(ctx, w.gatewayAdmin)
	if err != nil {
		return err
	}
	w.tel.Scrapes++
	w.tel.ScrapeBytes, w.tel.ScrapeSeries = st.Bytes, st.Series
	return nil
}

// setSessionIdle sets session.idle_timeout in the gateway's configuration.
func (w *world) setSessionIdle(d time.Duration) error {
	data, err := os.ReadFile(w.configPath)
	if err == nil {
		data, err = withSetting(data, "session", "idle_timeout", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: d.String()})
	}
	if err == nil {
		err = os.WriteFile(w.configPath, data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("session.idle_timeout in the configuration: %w", err)
	}
	return nil
}

// profile writes a CPU profile of the gateway over the next seconds to
// path, from its admin listener's pprof.
func (w *world) profile(ctx context.Context, seconds int, path string) error {
	return w.pprof(ctx, fmt.Sprintf("profile?seconds=%d", seconds), path)
}

// pprof writes the gateway's /debug/pprof/<profile> to path.
func (w *world) pprof(ctx context.Context, profile, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s", w.gatewayAdmin, profile)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
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

// close stops the world's processes and removes the directory.
func (w *world) close() {
	w.gateway.stop()
	w.libfloor.stop()
	w.demo.stop()
	_ = os.RemoveAll(w.dir) // temporary; nothing to do if it fails
}

// withLogs adds the tails of the processes' logs to err, since they are
// about to be removed.
func (w *world) withLogs(err error) error {
	for _, p := range []*process{w.gateway, w.libfloor, w.demo} {
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

// listenLine is the gateway's "custodian is listening" log line: its
// public listener and its admin listener ("" without one).
type listenLine struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// listenLogged returns the gateway's "custodian is listening" JSON log
// line in log, zero before it is written.
func listenLogged(log string) listenLine {
	f, err := os.Open(log)
	if err != nil {
		return listenLine{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"custodian is listening"`) {
			continue
		}
		var line listenLine
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "custodian is listening" {
			return line
		}
	}
	return listenLine{}
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

// startLibraryFloor starts benchfloor's process (scripts/bench/floor) on
// the orders, profiles and loyalty backends of the world's configuration,
// in their protocols, unless it runs already, and returns its base URL.
func (w *world) startLibraryFloor(ctx context.Context) (string, error) {
	var ready struct {
		Listen string `json:"listen"`
	}
	readyFile := filepath.Join(w.dir, "floor.json")
	if w.libfloor == nil || w.libfloor.exited() {
		var args []string
		for _, name := range []string{"orders", "profiles", "loyalty"} {
			b, err := w.config.find(name)
			if err != nil {
				return "", err
			}
			args = append(args, "--backend", name+"="+b.Protocol+"@"+b.URL)
		}
		var err error
		if w.libfloor, err = startProcess("bench-floor", w.bins.floor, args, nil, filepath.Join(w.dir, "floor.log"), readyFile); err != nil {
			return "", err
		}
	}
	if err := waitFor(ctx, w.libfloor, func() (bool, error) { return readLine(readyFile, &ready) }); err != nil {
		return "", err
	}
	return "http://" + ready.Listen, nil
}
