package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/demo"
)

// demoRun is the demo around a gateway: the demo world (provider and
// backends), the store's pages, and the tracing that draws their
// waterfalls.
type demoRun struct {
	world    *demo.World
	site     *demo.Site
	recorder *demo.SpanRecorder
}

// startDemoRun starts the demo world for a gateway listening on ln and
// the store that calls that gateway over loopback.
func startDemoRun(ctx context.Context, logger *slog.Logger, ln net.Listener, o overrides) (*demoRun, error) {
	world, err := startDemo(ctx, logger, ln, o)
	if err != nil {
		return nil, err
	}
	recorder := demo.NewSpanRecorder()
	site, err := demo.NewSite(demo.SiteConfig{
		API:       loopbackURL(ln),
		PublicURL: world.Config.PublicURL,
		Backends:  world.Backends,
		Spans:     recorder,
	})
	if err != nil {
		_ = world.Close(context.WithoutCancel(ctx)) // the site's error matters more
		return nil, err
	}
	return &demoRun{world: world, site: site, recorder: recorder}, nil
}

// options are the gateway options of the demo: the provider's and the
// store's routes, and the recorder the store's pages draw their waterfalls
// from. The recorder sits beside whatever exporter telemetry.traces or the
// OTEL_* variables configure, and spans are recorded at their sampling
// ratio (default: every call).
func (d *demoRun) options() []custodian.Option {
	opts := []custodian.Option{
		custodian.WithHandler(demo.IdPPath, d.world.IdP),
		custodian.WithSpanProcessor(d.recorder),
	}
	for _, pattern := range d.site.Patterns() {
		opts = append(opts, custodian.WithHandler(pattern, d.site))
	}
	return opts
}

// started hands the built gateway's logger to the store.
func (d *demoRun) started(gw *custodian.Gateway) {
	d.site.SetLogger(gw.Logger())
}

// close stops the store's connections and the backends.
func (d *demoRun) close(ctx context.Context, logger *slog.Logger) {
	d.site.Close()
	if err := d.world.Close(ctx); err != nil {
		logger.Warn("demo backends did not stop cleanly", "error", err)
	}
}

// loopbackURL is where this process reaches the gateway on ln.
func loopbackURL(ln net.Listener) string {
	addr := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		host := tcp.IP
		if host == nil || host.IsUnspecified() {
			host = net.IPv4(127, 0, 0, 1)
		}
		addr = net.JoinHostPort(host.String(), fmt.Sprint(tcp.Port))
	}
	return "http://" + addr
}
