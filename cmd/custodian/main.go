// Command custodian runs the Custodian gateway. Without --config it runs the
// demo: a demo identity provider, the Acme demo backends and in-memory
// sessions, all on this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/demo"
	"github.com/custodian-bff/custodian/server/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("custodian", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "YAML configuration `file`; without it the demo runs")
	addr := flags.String("addr", "", "listen `address` (default 127.0.0.1:8080, or the configuration's listen)")
	logLevel := flags.String("log-level", "info", "log `level`: debug, info, warn or error")
	logJSON := flags.Bool("log-json", false, "log in JSON instead of text")
	var o overrides
	flags.StringVar(&o.publicURL, "public-url", "", "the origin browsers use, e.g. http://localhost:3000 for a Next.js app in front (default http://localhost:PORT in the demo, or the configuration's public_url)")
	flags.Var(&o.allowedOrigins, "allowed-origins", "comma-separated `origins` whose pages may call with the session besides public_url's (replaces cors.allowed_origins)")
	flags.Var(&o.trustedProxies, "trusted-proxies", "comma-separated `CIDRs` whose X-Forwarded-For is believed, e.g. 127.0.0.1/32 for a Next.js server on this machine (replaces trusted_proxies)")
	flags.StringVar(&o.adminAddr, "admin-addr", "", "admin listener `address` for /metrics, e.g. 127.0.0.1:9090 (replaces telemetry.admin.listen; never the public port)")
	flags.BoolVar(&o.pprof, "pprof", false, "serve net/http/pprof on the admin listener (sets telemetry.admin.pprof)")
	flags.DurationVar(&o.accessTokenLifetime, "access-token-lifetime", 0, "demo only: how long the demo provider's access tokens live; 0 keeps its default")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "custodian: unexpected arguments %q\n", flags.Args())
		return 2
	}
	if *configPath != "" && o.accessTokenLifetime != 0 {
		fmt.Fprintln(stderr, "custodian: --access-token-lifetime is for the demo; it cannot be used with --config")
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "custodian: --log-level: %v\n", err)
		return 2
	}
	handlerOpts := &slog.HandlerOptions{Level: level}
	logOut := newBufferedLog(stderr)
	var logger *slog.Logger
	if *logJSON {
		logger = slog.New(slog.NewJSONHandler(logOut, handlerOpts))
	} else {
		logger = slog.New(slog.NewTextHandler(logOut, handlerOpts))
	}
	tuneRuntime(os.Getenv, logger)
	err := serve(ctx, logger, *configPath, *addr, o)
	_ = logOut.Close() // the log's last lines before the error
	if err != nil {
		fmt.Fprintf(stderr, "custodian: %s\n", strings.TrimPrefix(err.Error(), "custodian: "))
		return 1
	}
	return 0
}

func serve(ctx context.Context, logger *slog.Logger, configPath, addr string, o overrides) error {
	var cfg *config.Config
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath, os.Getenv); err != nil {
			return err
		}
		if addr == "" {
			addr = cfg.Listen
		}
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	opts := []custodian.Option{custodian.WithLogger(logger)}
	var run *demoRun
	if cfg == nil {
		var err error
		if run, err = startDemoRun(ctx, logger, ln, o); err != nil {
			return err
		}
		defer run.close(context.WithoutCancel(ctx), logger)
		cfg = run.world.Config
		opts = append(opts, run.options()...)
	}
	cfg.Listen = ln.Addr().String()
	if err := o.apply(cfg); err != nil {
		return err
	}
	gw, err := custodian.New(cfg, opts...)
	if err != nil {
		return err
	}
	// The reference binary serves the Acme store wherever its backends are
	// configured, mounted through the public API like any team's services.
	if err := demo.MountStore(gw); err != nil {
		return err
	}
	if run != nil {
		run.started(gw)
	}
	attrs := []any{"url", cfg.PublicURL, "listen", cfg.Listen, "services", gw.Services()}
	if admin := gw.AdminAddr(); admin != "" {
		attrs = append(attrs, "admin", admin) // host:port of /metrics; the bench harness reads it
	}
	logger.Info("custodian is listening", attrs...)
	return gw.Serve(ctx, ln)
}

// startDemo starts the demo world for a gateway listening on ln.
func startDemo(ctx context.Context, logger *slog.Logger, ln net.Listener, o overrides) (*demo.World, error) {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil, errors.New("demo: listener is not TCP")
	}
	// Browsers treat http://localhost as a secure context, so the session
	// cookie's __Host- prefix works there without TLS.
	publicURL := fmt.Sprintf("http://localhost:%d", tcp.Port)
	if o.publicURL != "" {
		publicURL = o.publicURL
	}
	host := tcp.IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	listenURL := "http://" + net.JoinHostPort(host.String(), fmt.Sprint(tcp.Port))
	demoOpts := []demo.Option{demo.WithLogger(logger)}
	if o.accessTokenLifetime > 0 {
		demoOpts = append(demoOpts, demo.WithAccessTokenLifetime(o.accessTokenLifetime))
	}
	world, err := demo.Start(ctx, publicURL, listenURL, demoOpts...)
	if err != nil {
		return nil, err
	}
	logger.Warn("DEMO MODE: demo identity provider, demo backends and made-up keys; not for production",
		"url", publicURL, "users", "alice/demo, bob/demo")
	return world, nil
}
