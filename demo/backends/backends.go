// Package backends runs the Acme store's four demo backend services. Not for
// production.
//
// Each service (profiles, orders, catalog and loyalty) is a real Connect
// server on its own loopback listener that speaks Connect, gRPC and gRPC-Web
// over HTTP/1.1 and unencrypted HTTP/2. Every procedure demands a bearer JWT
// issued for the service's own audience, and every answer carries internal
// fields that a gateway must never pass on to a browser. Faults can be
// injected per service, so the gateway's tests can exercise slow and failing
// backends.
package backends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
)

// readHeaderTimeout bounds how long a client may take to send its request
// headers, so an idle or hostile client can't pin a connection forever.
const readHeaderTimeout = 5 * time.Second

// maxMessageBytes caps the size of request messages; the demo's requests are
// tiny, so anything larger is a mistake or an attack.
const maxMessageBytes = 1 << 20

// Set is the Acme store's four demo backends, each with its own listener and
// its own freshly seeded data.
type Set struct {
	Profiles *Backend
	Orders   *Backend
	Catalog  *Backend
	Loyalty  *Backend
}

// Start starts all four backends on 127.0.0.1 with ephemeral ports. Tokens
// must be issued by issuer and signed by a key from the JWKS at jwksURL. The
// context bounds only startup; stop the backends with [Set.Close].
func Start(ctx context.Context, issuer, jwksURL string, opts ...Option) (*Set, error) {
	if issuer == "" {
		return nil, errors.New("backends: issuer is empty")
	}
	if jwksURL == "" {
		return nil, errors.New("backends: JWKS URL is empty")
	}
	o := newOptions(opts)
	products := seedProducts()
	specs := []struct {
		name         string
		faultMessage string
		register     func(*connect.Server)
	}{
		{
			name:         "profiles",
			faultMessage: `profiles-pg-2.acme.internal:5432: FATAL: remaining connection slots are reserved for role "profiles_rw"`,
			register:     newProfileService().register,
		},
		{
			name:         "orders",
			faultMessage: "orders-db-3.acme.internal: deadlock detected (txn 8812)",
			register:     newOrderService(products).register,
		},
		{
			name:         "catalog",
			faultMessage: "catalog-shard-1.acme.internal: read segment 0x7f3a: input/output error",
			register:     newCatalogService(products).register,
		},
		{
			name:         "loyalty",
			faultMessage: "ledger-1.acme.internal: lock wait timeout exceeded on acct-7f3c21a9; try restarting transaction",
			register:     newLoyaltyService().register,
		},
	}
	started := make([]*Backend, 0, len(specs))
	for _, spec := range specs {
		b, err := startBackend(ctx, spec.name, spec.faultMessage, issuer, jwksURL, o, spec.register)
		if err != nil {
			_ = closeAll(context.WithoutCancel(ctx), started) // the start error matters more
			return nil, err
		}
		started = append(started, b)
	}
	return &Set{
		Profiles: started[0],
		Orders:   started[1],
		Catalog:  started[2],
		Loyalty:  started[3],
	}, nil
}

// All returns the four backends in a fixed order: profiles, orders, catalog,
// loyalty.
func (s *Set) All() []*Backend {
	return []*Backend{s.Profiles, s.Orders, s.Catalog, s.Loyalty}
}

// Close gracefully shuts down all four backends, waiting for requests in
// flight until ctx ends; then it closes whatever is left. Calling Close more
// than once is harmless. Clients that keep idle HTTP/2 connections open can
// make Close take about a second (net/http's GOAWAY grace period); closing
// their idle connections first avoids that.
func (s *Set) Close(ctx context.Context) error {
	return closeAll(ctx, s.All())
}

func closeAll(ctx context.Context, backends []*Backend) error {
	errs := make([]error, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		wg.Go(func() { errs[i] = b.close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Backend is one running demo service.
type Backend struct {
	name     string
	audience string
	url      string
	logger   *slog.Logger
	server   *http.Server
	served   chan struct{} // closed when Serve returns

	faults      faultInjector
	calls       callCounter
	lastSubject atomic.Pointer[string]

	closeOnce sync.Once
	closeErr  error
}

func startBackend(
	ctx context.Context,
	name, faultMessage, issuer, jwksURL string,
	o *options,
	register func(*connect.Server),
) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backends: start %s: %w", name, err)
	}
	b := &Backend{
		name:     name,
		audience: "acme-" + name,
		logger:   o.logger.With("backend", name),
		served:   make(chan struct{}),
		faults:   faultInjector{message: faultMessage},
		calls:    callCounter{byProcedure: make(map[string]int64)},
	}
	auth := newAuthenticator(issuer, jwksURL, b.audience, o.httpClient, b.logger)
	srv := connect.NewServer(auth.interceptor(), b.observer(), b.faults.interceptor())
	register(srv)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv, connecthttp.WithReadMaxBytes(maxMessageBytes))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	b.server = &http.Server{
		Handler:           mux,
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(b.logger.Handler(), slog.LevelWarn),
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backends: listen for %s: %w", name, err)
	}
	b.url = "http://" + ln.Addr().String()
	go func() {
		defer close(b.served)
		if err := b.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("serve failed", "error", err)
		}
	}()
	b.logger.Debug("backend started", "url", b.url, "audience", b.audience)
	return b, nil
}

// Name returns the service's short name: "profiles", "orders", "catalog" or
// "loyalty".
func (b *Backend) Name() string { return b.name }

// URL returns the service's base URL, such as "http://127.0.0.1:40123".
func (b *Backend) URL() string { return b.url }

// Audience returns the audience that bearer tokens must carry to be accepted
// by this service, such as "acme-orders".
func (b *Backend) Audience() string { return b.audience }

// SetFault makes the service misbehave from now on as f describes; Fault{}
// restores normal service. It is safe for concurrent use.
func (b *Backend) SetFault(f Fault) { b.faults.set(f) }

// Fault returns the service's current Fault. It is safe for concurrent use.
func (b *Backend) Fault() Fault { return b.faults.get() }

// Calls returns how many requests for procedure (such as
// "/acme.orders.v1.OrderService/ListOrders") passed authentication, including
// those then answered by a [Fault]. The empty procedure counts all of them.
func (b *Backend) Calls(procedure string) int64 { return b.calls.get(procedure) }

// LastSubject returns the subject of the last token the service accepted, or
// "" if it accepted none yet.
func (b *Backend) LastSubject() string {
	if s := b.lastSubject.Load(); s != nil {
		return *s
	}
	return ""
}

// observer records authenticated calls for [Backend.Calls] and
// [Backend.LastSubject]. It runs after authentication and before faults.
func (b *Backend) observer() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			if subject, ok := subjectFromContext(ctx); ok {
				b.lastSubject.Store(&subject)
			}
			b.calls.add(spec.Procedure)
			return next(ctx, spec, stream)
		}
	}
}

func (b *Backend) close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if err := b.server.Shutdown(ctx); err != nil {
			b.closeErr = fmt.Errorf("backends: shut down %s: %w", b.name, err)
			_ = b.server.Close() // Shutdown gave up; drop what's left.
		}
		<-b.served
	})
	return b.closeErr
}

// callCounter counts calls per procedure.
type callCounter struct {
	mu          sync.Mutex
	total       int64
	byProcedure map[string]int64
}

func (c *callCounter) add(procedure string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.byProcedure[procedure]++
}

func (c *callCounter) get(procedure string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if procedure == "" {
		return c.total
	}
	return c.byProcedure[procedure]
}
