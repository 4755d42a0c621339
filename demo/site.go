package demo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/demo/backends"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
)

// apiTimeout bounds each call a page makes to the gateway.
const apiTimeout = 10 * time.Second

// maxFormBytes bounds a form post; the store's forms are a few fields.
const maxFormBytes = 8 << 10

// SiteConfig configures a Site.
type SiteConfig struct {
	// API is where the pages call the gateway's browser-facing API, over
	// loopback: its listen address, e.g. http://127.0.0.1:8080.
	API string
	// PublicURL is the origin browsers use, e.g. http://localhost:8080.
	// Form posts are accepted only from its pages.
	PublicURL string
	// Backends are the demo backends whose faults the pages show and set.
	// Nil: no fault buttons.
	Backends *backends.Set
	// Spans has the gateway's spans, for the waterfall under each page.
	// Nil: no waterfall.
	Spans *SpanRecorder
	// HTTPClient makes the calls to API. Default: a client of its own.
	HTTPClient *http.Client
}

// Site is the demo's Acme store: pages rendered on the server by calling
// the gateway's own browser-facing API exactly as any server-side renderer
// would, over HTTP with the browser's Cookie header and nothing else. Under
// each page it draws what the gateway did for it, from the spans of its
// calls. Serve it on the gateway for each of [Site.Patterns].
type Site struct {
	origin   string
	http     *http.Client
	ownHTTP  bool
	sessions custodianv1connect.SessionServiceClient
	account  storefrontv1connect.AccountServiceClient
	products storefrontv1connect.ProductServiceClient
	backends *backends.Set
	spans    *SpanRecorder
	logger   atomic.Pointer[slog.Logger]
	mux      *http.ServeMux
}

// NewSite returns the store for cfg.
func NewSite(cfg SiteConfig) (*Site, error) {
	origin := originOf(cfg.PublicURL)
	if origin == "" {
		return nil, errors.New("demo: site: the public URL is not an absolute URL")
	}
	if originOf(cfg.API) == "" {
		return nil, errors.New("demo: site: the API URL is not an absolute URL")
	}
	s := &Site{origin: origin, http: cfg.HTTPClient, backends: cfg.Backends, spans: cfg.Spans}
	if s.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // loopback, never through a proxy
		t.MaxIdleConnsPerHost = 32
		s.http = &http.Client{Transport: t, Timeout: apiTimeout}
		s.ownHTTP = true
	}
	client := connect.NewClient(connecthttp.NewTransport(s.http, strings.TrimRight(cfg.API, "/")))
	s.sessions = custodianv1connect.NewSessionServiceClient(client)
	s.account = storefrontv1connect.NewAccountServiceClient(client)
	s.products = storefrontv1connect.NewProductServiceClient(client)
	s.logger.Store(slog.New(slog.DiscardHandler))
	s.mux = http.NewServeMux()
	for _, r := range s.routes() {
		s.mux.HandleFunc(r.pattern, r.handle)
	}
	return s, nil
}

// SetLogger sets the logger, such as the gateway's [custodian.Gateway.Logger].
// Default: discard.
func (s *Site) SetLogger(logger *slog.Logger) { s.logger.Store(logger) }

// Patterns lists the http.ServeMux patterns the site answers.
func (s *Site) Patterns() []string {
	routes := s.routes()
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.pattern
	}
	return out
}

// ServeHTTP serves the site's pages.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close closes the idle connections of the site's own HTTP client.
func (s *Site) Close() {
	if s.ownHTTP {
		s.http.CloseIdleConnections()
	}
}

type siteRoute struct {
	pattern string
	handle  func(http.ResponseWriter, *http.Request)
}

func (s *Site) routes() []siteRoute {
	return []siteRoute{
		{"GET /{$}", s.home},
		{"GET /products", s.productList},
		{"GET /orders", s.orderList},
		{"GET /orders/{id}", s.orderDetail},
		{"POST /orders", s.placeOrder},
		{"GET /profile", s.profile},
		{"POST /profile", s.updateProfile},
		{"POST /demo/faults", s.setFault},
	}
}

// page is one render: the browser's request, the calls made for it, and
// what the layout shows around the content.
type page struct {
	r     *http.Request
	calls calls
	data  pageData
}

// pageData is what the layout template gets.
type pageData struct {
	Title     string
	Nav       string // the current section: "home", "products", "orders", "profile"
	Who       who
	Notice    string
	Error     *errorView
	Content   any
	Waterfall *waterfall
	Faults    []faultView
	Return    string // where the fault buttons come back to
}

// who is the sign-in line.
type who struct {
	SignedIn  bool
	Name      string
	Email     string
	LogoutURL string
	LoginURL  string
}

// errorView is a friendly error: never the gateway's or a backend's text.
type errorView struct {
	Status  int
	Code    string // the Connect code, e.g. "unavailable"
	Message string
	SignIn  string // a sign-in link when signing in would help
}

func (s *Site) newPage(r *http.Request, title, nav string) *page {
	p := &page{r: r}
	p.data.Title, p.data.Nav = title, nav
	p.data.Return = localPath(r.URL.RequestURI())
	p.data.Who.LoginURL = loginURL(r.URL.RequestURI())
	return p
}

// loginURL is the gateway's sign-in route, coming back to returnTo.
func loginURL(returnTo string) string {
	return "/auth/login?return_to=" + url.QueryEscape(localPath(returnTo))
}

// invoke makes one call to the gateway for p, with the browser's Cookie
// header and nothing else of its request, and records it for the
// waterfall.
func invoke[Req, Res any](p *page, procedure string, method func(context.Context, *Req) (*Res, error), req *Req) (*Res, error) {
	ctx, cancel := context.WithTimeout(p.r.Context(), apiTimeout)
	defer cancel()
	ctx, info := connect.NewClientContext(ctx)
	if cookies := p.r.Header.Values("Cookie"); len(cookies) > 0 {
		info.RequestHeader().SetValues("Cookie", cookies)
	}
	start := time.Now()
	res, err := method(ctx, req)
	p.calls.add(call{
		procedure: procedure,
		requestID: info.ResponseHeader().Get("X-Request-Id"),
		start:     start,
		end:       time.Now(),
		code:      connect.CodeOf(err),
	})
	return res, err
}

// session asks the gateway who is signed in and fills the sign-in line.
// A caller without a session gets a signed-out answer, not an error.
func (s *Site) session(p *page) (*custodianv1.GetSessionResponse, error) {
	res, err := invoke(p, "SessionService/GetSession", s.sessions.GetSession, &custodianv1.GetSessionRequest{})
	if err != nil {
		return nil, err
	}
	if res.GetSignedIn() {
		p.data.Who = who{
			SignedIn:  true,
			Name:      res.GetUser().GetName(),
			Email:     res.GetUser().GetEmail(),
			LogoutURL: logoutPath(res.GetLogoutUrl()),
			LoginURL:  p.data.Who.LoginURL,
		}
	}
	return res, nil
}

// logoutPath keeps the path and query of the gateway's logout URL, so the
// link stays on the origin the browser is on.
func logoutPath(logoutURL string) string {
	u, err := url.Parse(logoutURL)
	if err != nil || u.Path != "/auth/logout" {
		return "/auth/logout"
	}
	return localPath(u.RequestURI())
}

// together runs fns at the same time, as a page does with calls that do
// not depend on each other, and returns when all have.
func together(fns ...func()) {
	done := make(chan struct{}, len(fns))
	for _, fn := range fns {
		go func() {
			defer func() { done <- struct{}{} }()
			fn()
		}()
	}
	for range fns {
		<-done
	}
}

// invokeBeside makes one call of the page while its session is looked
// up, the two in parallel as a server renderer would: the call's answer
// and error, and the session's error.
func invokeBeside[Req, Res any](s *Site, p *page, procedure string, method func(context.Context, *Req) (*Res, error), req *Req) (res *Res, sessErr, err error) {
	together(
		func() { _, sessErr = s.session(p) },
		func() { res, err = invoke(p, procedure, method, req) },
	)
	return res, sessErr, err
}

// failed turns an error of a call into a friendly page: the Connect code
// and a message of the site's own, never the error's text.
func (s *Site) failed(p *page, err error) {
	code := connect.CodeOf(err)
	v := &errorView{Status: http.StatusBadGateway, Code: code.String(), Message: "Something went wrong on our side. Please try again."}
	switch code {
	case connect.CodeUnauthenticated:
		v.Status, v.Message, v.SignIn = http.StatusUnauthorized, "Your session has ended. Please sign in again.", p.data.Who.LoginURL
		p.data.Who = who{LoginURL: p.data.Who.LoginURL}
	case connect.CodeNotFound:
		v.Status, v.Message = http.StatusNotFound, "We could not find that."
	case connect.CodeInvalidArgument, connect.CodeOutOfRange:
		v.Status, v.Message = http.StatusBadRequest, "Something in that request was not right. Please go back and try again."
	case connect.CodePermissionDenied:
		v.Status, v.Message = http.StatusForbidden, "That is not allowed."
	case connect.CodeResourceExhausted:
		v.Status, v.Message = http.StatusTooManyRequests, "Too many requests. Please wait a moment and try again."
	case connect.CodeUnavailable:
		v.Status, v.Message = http.StatusServiceUnavailable, "Part of the store is not answering right now. Please try again in a moment."
	case connect.CodeDeadlineExceeded:
		v.Status, v.Message = http.StatusGatewayTimeout, "The store took too long to answer. Please try again."
	case connect.CodeCanceled:
		v.Status, v.Message = http.StatusServiceUnavailable, "The request was canceled."
	case connect.CodeFailedPrecondition, connect.CodeAborted, connect.CodeAlreadyExists:
		v.Status, v.Message = http.StatusConflict, "That could not be done right now. Please try again."
	}
	if code != connect.CodeUnauthenticated && code != connect.CodeNotFound && code != connect.CodeInvalidArgument {
		s.logger.Load().LogAttrs(p.r.Context(), slog.LevelWarn, "demo page: a call to the gateway failed",
			slog.String("path", p.r.URL.Path), slog.String("code", code.String()))
	}
	p.data.Error = v
}

// refuse answers a page of the site's own, e.g. a bad form value or a
// cross-site post.
func (s *Site) refuse(p *page, status int, message string) {
	p.data.Error = &errorView{Status: status, Message: message}
}

// render draws p with the content template named content, the waterfall
// of its calls and the fault buttons, and sends it.
func (s *Site) render(w http.ResponseWriter, p *page, content string) {
	status := http.StatusOK
	if p.data.Error != nil {
		status = p.data.Error.Status
		content = "error"
	}
	p.data.Waterfall = buildWaterfall(p.r.Context(), s.spans, p.calls.snapshot())
	p.data.Faults = s.faults()
	var buf bytes.Buffer
	if err := pages[content].Execute(&buf, p.data); err != nil {
		s.logger.Load().ErrorContext(p.r.Context(), "demo page: rendering failed", "page", content, "error", err)
		http.Error(w, "The page could not be drawn.", http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageHeaders sets the headers of a page: no scripts at all, forms only to
// this site, no framing, no caching. The referrer goes to this site only:
// under "no-referrer" a browser would name the origin of the page's own
// form posts "null", and sameOrigin would refuse them.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// redirect sends the browser to a path of this site with 303 See Other.
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, localPath(path), http.StatusSeeOther)
}

// parseForm reads a small url-encoded form body.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm()
}
