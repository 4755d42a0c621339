// Command custodian-demo runs the demo world in a process of its own, apart
// from the gateway, for several gateway processes at once: the demo OpenID
// provider on its own loopback listener, the four Acme backends on loopback
// ports, and a configuration file for each gateway replica.
//
//	custodian-demo --out ./demo-run --gateway http://localhost:8081 --gateway http://localhost:8082 \
//	    --redis-url redis://127.0.0.1:6379/0
//	custodian --config ./demo-run/gateway-1.yaml &
//	custodian --config ./demo-run/gateway-2.yaml &
//
// With --canned the configurations name canned stand-ins of the four
// backends instead (demo.CannedBackend): they answer from memory with the
// bytes the demo backends once answered, without checking tokens, so a load
// test measures the gateway's own cost (scripts/bench.sh, docs/bench.md).
//
// When it is ready it prints one JSON line on stdout: the issuer, the URL
// of its controls (see demo.Standalone.Handler: token requests by grant
// type, a slow token endpoint, back-channel logout) and the configuration
// files. It logs to stderr and runs until SIGINT or SIGTERM.
//
// Without --config, cmd/custodian runs the demo world and one gateway in
// one process; this command is for what that cannot show: replicas, restarts
// of a gateway while its provider keeps its state, and load tests that
// measure the gateway without the provider and backends on its CPU. Not for
// production: users, passwords and keys are made up, and the controls need
// no credentials.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/custodian-bff/custodian/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Ready is the line printed on stdout once the world serves.
type Ready struct {
	// Issuer is the demo provider's issuer URL.
	Issuer string `json:"issuer"`
	// Admin is the URL of the world's controls (demo.AdminPath).
	Admin string `json:"admin"`
	// Configs are the gateway configuration files, one per --gateway.
	Configs []string `json:"configs"`
	// Canned is true with --canned: the configurations name canned
	// backends.
	Canned bool `json:"canned,omitempty"`
}

// urls is a repeatable flag.
type urls []string

func (u *urls) String() string     { return strings.Join(*u, ",") }
func (u *urls) Set(v string) error { *u = append(*u, v); return nil }

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("custodian-demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9090", "listen `address` of the provider and the controls; port 0 picks one")
	out := flags.String("out", "", "`directory` to write the gateway configurations and their secrets into (required)")
	var gateways urls
	flags.Var(&gateways, "gateway", "public `URL` of a gateway replica; repeat for each (default http://localhost:8080)")
	redisURL := flags.String("redis-url", "", "Redis `URL` the replicas share sessions in; without it each keeps its own in memory")
	lifetime := flags.Duration("access-token-lifetime", 0, "how long access tokens live; 0 keeps the demo provider's default")
	logLevel := flags.String("log-level", "info", "log `level`: debug, info, warn or error")
	logJSON := flags.Bool("log-json", false, "log in JSON instead of text")
	canned := flags.Bool("canned", false, "name canned backends in the configurations: answers from memory, no token checks, for load tests of the gateway alone")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "custodian-demo: unexpected arguments %q\n", flags.Args())
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "custodian-demo: --out is required")
		return 2
	}
	if len(gateways) == 0 {
		gateways = urls{"http://localhost:8080"}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "custodian-demo: --log-level: %v\n", err)
		return 2
	}
	handlerOpts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if *logJSON {
		logger = slog.New(slog.NewJSONHandler(stderr, handlerOpts))
	} else {
		logger = slog.New(slog.NewTextHandler(stderr, handlerOpts))
	}
	c := demo.StandaloneConfig{
		Gateways:            gateways,
		RedisURL:            *redisURL,
		AccessTokenLifetime: *lifetime,
		Canned:              *canned,
		Logger:              logger,
	}
	if err := serve(ctx, logger, *addr, *out, c, stdout); err != nil {
		fmt.Fprintf(stderr, "custodian-demo: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, logger *slog.Logger, addr, out string, c demo.StandaloneConfig, stdout io.Writer) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	c.ListenURL = "http://" + ln.Addr().String()
	world, err := demo.StartStandalone(ctx, c)
	if err != nil {
		return err
	}
	defer func() {
		if err := world.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("demo backends did not stop cleanly", "error", err)
		}
	}()
	configs, err := world.WriteConfigs(out)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           world.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ready := Ready{Issuer: world.World.IdP.Issuer(), Admin: c.ListenURL + demo.AdminPath, Configs: configs, Canned: c.Canned}
	line, err := json.Marshal(ready)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	logger.Warn("DEMO WORLD: demo identity provider, demo backends and made-up keys; not for production",
		"issuer", ready.Issuer, "admin", ready.Admin, "gateways", c.Gateways, "configs", configs, "canned", c.Canned, "users", "alice/demo, bob/demo")
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
