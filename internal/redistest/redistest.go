// Package redistest starts real redis-server processes for tests: each on an
// ephemeral loopback port with a data directory of its own, stopped when the
// test ends. A server can be stopped and started again on the same port and
// data directory, to test what happens while Redis is away.
//
// redis-server must be on PATH (Debian: apt-get install -y redis-server;
// scripts/test.sh installs it when absent). Without it the test fails: a
// store that is not tested is not skipped quietly.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a server may take to answer PING.
	startTimeout = 15 * time.Second
	// stopTimeout bounds a graceful stop before the process is killed.
	stopTimeout = 10 * time.Second
)

// errExited is wrapped by start's error when redis-server exited at once,
// as when another process took its port.
var errExited = errors.New("exited")

// Option configures a Server.
type Option interface {
	apply(*Server)
}

type optionFunc func(*Server)

func (f optionFunc) apply(s *Server) { f(s) }

// WithCluster starts the server as a one-node Redis Cluster holding all
// 16384 slots, so that a cluster client can talk to it and the server
// refuses commands whose keys span slots (CROSSSLOT), as a real cluster
// does.
func WithCluster() Option {
	return optionFunc(func(s *Server) { s.cluster = true })
}

// WithArgs adds redis-server command-line arguments, such as
// "--requirepass", "secret".
func WithArgs(args ...string) Option {
	return optionFunc(func(s *Server) { s.extra = append(s.extra, args...) })
}

// WithPassword makes the server require password (requirepass); Do
// authenticates with it.
func WithPassword(password string) Option {
	return optionFunc(func(s *Server) {
		s.password = password
		s.extra = append(s.extra, "--requirepass", password)
	})
}

// WithTLS makes the server speak TLS only, with a certificate for
// 127.0.0.1 and localhost from a CA of its own: see [Server.TLSConfig].
func WithTLS() Option {
	return optionFunc(func(s *Server) { s.tls = true })
}

// WithSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under name, instead of a Redis server.
func WithSentinel(master *Server, name string) Option {
	return optionFunc(func(s *Server) { s.sentinelOf, s.masterName = master, name })
}

// Server is a redis-server process on 127.0.0.1.
type Server struct {
	t          testing.TB
	bin        string
	dir        string
	port       int
	cluster    bool
	password   string
	tls        bool
	tlsConfig  *tls.Config // a client's: trusts the server's CA
	sentinelOf *Server
	masterName string
	extra      []string

	mu      sync.Mutex
	cmd     *exec.Cmd     // nil while stopped
	exited  chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's result, set before exited closes
	out     *lockedBuffer // the server's log, for failure messages
}

// Start starts a redis-server for t and stops it when t ends. The server
// keeps its data in an append-only file in a temporary directory, so that
// Stop and Restart keep it. It fails t when redis-server is not on PATH or
// does not start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not on PATH in CI: the test command (scripts/test.sh) must install it with apt-get install -y redis-server")
		}
		t.Fatalf("redis-server is not on PATH: install it (Debian/Ubuntu: sudo apt-get install -y redis-server) or run scripts/test.sh, which does")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	for _, opt := range opts {
		opt.apply(s)
	}
	if s.tls {
		if s.tlsConfig, err = writeCertificates(s.dir); err != nil {
			t.Fatalf("redistest: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	// The port is found free, then handed to redis-server: another process
	// may take it in between, so a failed start is retried on a new port.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		err = s.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errExited) || attempt == 5 {
			t.Fatalf("redistest: %v", err)
		}
	}
	if s.cluster {
		if err := s.assignSlots(); err != nil {
			t.Fatalf("redistest: %v\n%s", err, s.out)
		}
	}
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's redis:// URL, or rediss:// WithTLS.
func (s *Server) URL() string {
	if s.tls {
		return "rediss://" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// TLSConfig returns, WithTLS, a client's TLS configuration that trusts the
// server's certificate; otherwise nil.
func (s *Server) TLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return s.tlsConfig.Clone()
}

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Stop stops the server gracefully (SIGTERM: the append-only file is
// flushed), killing it if it takes longer than 10 seconds. Stopping a
// stopped server does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server (SIGKILL), as a crash would. Writes of the last
// second may be lost. Killing a stopped server does nothing.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Pause stops the server's process (SIGSTOP) without ending it: it
// accepts connections but answers nothing, as a server that is overloaded
// or partitioned away. Resume it, or Stop it, before the test ends.
func (s *Server) Pause() { s.send(syscall.SIGSTOP) }

// Resume resumes a paused server (SIGCONT).
func (s *Server) Resume() { s.send(syscall.SIGCONT) }

func (s *Server) send(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts a stopped server again on the same port and data
// directory, and waits until it answers PING (and, for a cluster, until the
// cluster is up). It fails the test when the server does not start.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
	if s.cluster {
		if err := s.waitClusterOK(); err != nil {
			s.t.Fatalf("redistest: restart: %v\n%s", err, s.out)
		}
	}
}

// Do sends one command on a new connection (authenticated, with
// WithPassword) and returns the reply: a
// simple string, bulk string or integer as text, or an error for an error
// reply. Arrays are not supported. It is for test setup and checks that
// want no Redis client.
func (s *Server) Do(args ...string) (string, error) {
	d := &net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if s.tlsConfig != nil {
		conn, err = tls.DialWithDialer(d, "tcp", s.Addr(), s.tlsConfig)
	} else {
		conn, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if s.password != "" {
		if _, err := roundTrip(conn, r, "AUTH", s.password); err != nil {
			return "", err
		}
	}
	return roundTrip(conn, r, args...)
}

func (s *Server) args() ([]string, error) {
	if s.sentinelOf != nil {
		// A Sentinel rewrites its configuration file: it is written once
		// and kept across restarts.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); errors.Is(err, fs.ErrNotExist) {
			text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
				s.port, s.dir, s.masterName, s.sentinelOf.port)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				return nil, err
			}
		}
		return append([]string{conf, "--sentinel"}, s.extra...), nil
	}
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.tls {
		port = []string{
			"--port", "0",
			"--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", filepath.Join(s.dir, "server.crt"),
			"--tls-key-file", filepath.Join(s.dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.crt"),
			"--tls-auth-clients", "no",
		}
	}
	args := append(port,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "everysec",
	)
	if s.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-announce-ip", "127.0.0.1",
		)
	}
	return append(args, s.extra...), nil
}

// start runs redis-server and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("redis-server is already running")
	}
	args, err := s.args()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	out := &lockedBuffer{}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.out = cmd, exited, out
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		// Up when it answers, even that it wants a password; not while it
		// loads its data (LOADING) or does not listen yet.
		reply, err := s.Do("PING")
		if err == nil && reply == "PONG" || err != nil && strings.HasPrefix(err.Error(), "NOAUTH") {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			waitErr := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("redis-server on port %d %w (%v):\n%s", s.port, errExited, waitErr, out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGKILL)
			return fmt.Errorf("redis-server on port %d did not answer PING within %v (last: %q, %v):\n%s", s.port, startTimeout, reply, err, out)
		}
	}
}

// signal sends sig to the running server and waits for it to exit.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server handles sig only once resumed
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// assignSlots gives the one node every slot and waits for the cluster to
// be up.
func (s *Server) assignSlots() error {
	if reply, err := s.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %v (%q)", err, reply)
	}
	return s.waitClusterOK()
}

func (s *Server) waitClusterOK() error {
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Do("CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok within %v: %v\n%s", startTimeout, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// roundTrip writes a RESP command and reads one non-array reply.
func roundTrip(w io.Writer, r *bufio.Reader, args ...string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unsupported reply %q", line)
	}
}

// lockedBuffer collects the server's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
