package replicas_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custodian-bff/custodian/demo"
)

// Bounds of the harness's waits.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// binaries are the commands under test, built for this test.
type binaries struct {
	gateway string // ./cmd/custodian
	world   string // ./cmd/custodian-demo
}

// buildBinaries builds the gateway and the demo world into a temporary
// directory. Under -race the gateway is built with the race detector too,
// so a data race in any replica fails the test (see process.checkLog).
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's directory: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	b := binaries{gateway: filepath.Join(dir, "custodian"), world: filepath.Join(dir, "custodian-demo")}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	build := func(out, pkg string, race bool) error {
		args := []string{"build", "-o", out}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.CommandContext(ctx, goBin, append(args, pkg)...)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
		return nil
	}
	var wg sync.WaitGroup
	var errGW, errWorld error
	wg.Go(func() { errGW = build(b.gateway, "./cmd/custodian", raceEnabled) })
	wg.Go(func() { errWorld = build(b.world, "./cmd/custodian-demo", false) })
	wg.Wait()
	if err := errors.Join(errGW, errWorld); err != nil {
		t.Fatal(err)
	}
	return b
}

// process is a child process whose output goes to a log file, kept across
// restarts and shown when the test fails.
type process struct {
	t    *testing.T
	name string
	bin  string
	args []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newProcess(t *testing.T, name, bin string, args ...string) *process {
	p := &process{t: t, name: name, bin: bin, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, p.tail(12<<10))
		}
	})
	return p
}

// start starts the process; its stdout, when stdout is not nil, goes there
// instead of the log.
func (p *process) start(stdout io.Writer) {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "---- %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// A data race in a child ends it at once, with the report in its log.
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// kill kills the process with SIGKILL, as a crash would, and waits for it.
func (p *process) kill() { p.signal(syscall.SIGKILL) }

// stop stops the process with SIGTERM, killing it after stopTimeout.
func (p *process) stop() { p.signal(syscall.SIGTERM) }

func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// tail returns the last n bytes of the log.
func (p *process) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// checkLog fails the test when the process reported a data race.
func (p *process) checkLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Error(err)
		return
	}
	if i := strings.Index(string(b), "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", p.name, string(b[i:min(len(b), i+8<<10)]))
	}
}

// cluster is the demo world and the gateway replicas, all on one Redis.
type cluster struct {
	world    *process
	admin    string // the world's controls, ending in "/"
	replicas []*replica
}

// replica is one gateway process.
type replica struct {
	n      int    // 1-based, as in the test's narrative
	public string // http://localhost:PORT, its public_url
	listen string // http://127.0.0.1:PORT
	proc   *process
}

// freePorts finds n free ports on 127.0.0.1. Another process may take one
// before the replica listens on it; on a test machine that is rare enough.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startCluster starts the demo world with access tokens of lifetime, then
// n gateway replicas on the configurations it wrote, sharing redisURL, and
// waits until every replica is ready.
func startCluster(t *testing.T, bins binaries, redisURL string, n int, lifetime time.Duration) *cluster {
	t.Helper()
	c := &cluster{}
	args := []string{"--addr", "127.0.0.1:0", "--out", t.TempDir(), "--redis-url", redisURL,
		"--access-token-lifetime", lifetime.String()}
	for i, port := range freePorts(t, n) {
		r := &replica{n: i + 1, public: "http://localhost:" + port, listen: "http://127.0.0.1:" + port}
		c.replicas = append(c.replicas, r)
		args = append(args, "--gateway", r.public)
	}
	c.world = newProcess(t, "custodian-demo", bins.world, args...)
	pr, pw := io.Pipe()
	c.world.start(pw)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { pw.Close() })
	var ready struct {
		Issuer  string   `json:"issuer"`
		Admin   string   `json:"admin"`
		Configs []string `json:"configs"`
	}
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("custodian-demo exited before it was ready:\n%s", c.world.tail(4<<10))
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil || len(ready.Configs) != n {
			t.Fatalf("custodian-demo's ready line %q: %v", line, err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("custodian-demo not ready within %v:\n%s", startTimeout, c.world.tail(4<<10))
	}
	c.admin = ready.Admin
	for i, r := range c.replicas {
		r.proc = newProcess(t, fmt.Sprintf("gateway-%d", r.n), bins.gateway, "--config", ready.Configs[i], "--log-level", "info")
		r.proc.start(nil)
	}
	for _, r := range c.replicas {
		r.waitReady(t)
	}
	return c
}

// waitReady waits until the replica's /readyz answers 200.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	if err := waitReadyz(r, http.StatusOK, startTimeout); err != nil {
		t.Fatalf("gateway %d: %v", r.n, err)
	}
}

// restart starts a stopped or killed replica again, with the same
// configuration and port, and waits until it is ready.
func (r *replica) restart(t *testing.T) {
	t.Helper()
	r.proc.start(nil)
	r.waitReady(t)
}

// readyz returns the status of the replica's /readyz.
func readyz(r *replica) (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	res, err := client.Get(r.listen + "/readyz")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// waitReadyz polls /readyz until it answers want.
func waitReadyz(r *replica, want int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		status, err := readyz(r)
		if err == nil && status == want {
			return nil
		}
		if !r.proc.running() {
			return fmt.Errorf("the process exited:\n%s", r.proc.tail(4<<10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz did not answer %d within %v (last: %d, %v)", want, within, status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthCheckSpec is grpc.health.v1.Health/Check, called over Connect.
var healthCheckSpec = connect.Spec{
	StreamType:       connect.StreamTypeUnary,
	IdempotencyLevel: connect.IdempotencyNoSideEffects,
	Schema:           healthv1.File_grpc_health_v1_health_proto.Services().ByName("Health").Methods().ByName("Check"),
	Procedure:        healthv1.Health_Check_FullMethodName,
}

// health returns the replica's status on the standard gRPC health service.
func health(r *replica) (healthv1.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := connect.NewClient(connecthttp.NewTransport(&http.Client{Timeout: 5 * time.Second}, r.listen))
	var res healthv1.HealthCheckResponse
	if err := client.CallUnary(ctx, healthCheckSpec, &healthv1.HealthCheckRequest{}, &res); err != nil {
		return 0, err
	}
	return res.GetStatus(), nil
}

// tokenRequests returns the demo provider's token requests by grant type.
func (c *cluster) tokenRequests(t *testing.T) map[string]demo.GrantStats {
	t.Helper()
	res, err := http.Get(c.admin + "token-requests")
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

// control POSTs form to one of the world's controls.
func (c *cluster) control(t *testing.T, name string, form url.Values) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.admin+name, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(demo.AdminHeader, "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s %v: %s %s", name, form, res.Status, body)
	}
}
