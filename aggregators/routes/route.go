package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	"github.com/custodian-bff/custodian/server/session"
)

// Claims a route can bind backend request fields to.
const (
	ClaimSubject = "sub"
	ClaimEmail   = "email"
	ClaimName    = "name"
)

// Config is one route to build with [New].
type Config struct {
	// Public is the browser-facing method, from the public schema.
	Public protoreflect.MethodDescriptor
	// Backend is the backend's method.
	Backend protoreflect.MethodDescriptor
	// Client calls the backend with its token policy, timeout and breaker.
	Client *connect.Client
	// Anonymous lets callers without a session call the route.
	Anonymous bool
	// AllowDynamicTypes accepts Any, Struct, Value and ListValue fields.
	AllowDynamicTypes bool
	// Bind sets backend request fields (by name) from session claims
	// (ClaimSubject, ClaimEmail, ClaimName).
	Bind map[string]string
	// Logger receives a line for each failed backend call, with the
	// backend's own message. Default: discard.
	Logger *slog.Logger
}

// Route serves one public method from one backend method: every request
// and answer is rebuilt from the public type's own fields.
type Route struct {
	public, backend protoreflect.MethodDescriptor
	client          *connect.Client
	logger          *slog.Logger
	anonymous       bool
	plan            *MethodPlan
	bindings        []binding
	publicSpec      connect.Spec
	backendSpec     connect.Spec
}

// binding sets one backend request field from one claim.
type binding struct {
	field protoreflect.FieldDescriptor
	claim func(session.User) string
}

// New checks c against its descriptors and returns the route. Errors name
// the field and the reason (a [*MismatchError] for a field that cannot be
// copied).
func New(c Config) (*Route, error) {
	if c.Public == nil || c.Backend == nil || c.Client == nil {
		return nil, errors.New("routes: a route needs its public method, its backend method and a client")
	}
	if err := CheckSeparation(c.Public, c.Backend); err != nil {
		return nil, err
	}
	var opts []Option
	if c.AllowDynamicTypes {
		opts = append(opts, AllowDynamic())
	}
	plan, err := CheckMethod(c.Public, c.Backend, opts...)
	if err != nil {
		return nil, err
	}
	if c.Anonymous && len(c.Bind) > 0 {
		return nil, errors.New("routes: a route that binds session claims cannot be anonymous")
	}
	r := &Route{public: c.Public, backend: c.Backend, client: c.Client, logger: c.Logger, anonymous: c.Anonymous, plan: plan}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	for _, field := range slices.Sorted(maps.Keys(c.Bind)) {
		fd, err := CheckBinding(c.Backend.Input(), c.Public.Input(), field)
		if err != nil {
			return nil, err
		}
		claim := c.Bind[field]
		var get func(session.User) string
		switch claim {
		case ClaimSubject:
			get = func(u session.User) string { return u.Subject }
		case ClaimEmail:
			get = func(u session.User) string { return u.Email }
		case ClaimName:
			get = func(u session.User) string { return u.Name }
		default:
			return nil, fmt.Errorf("routes: bind %s: unknown claim %q", field, claim)
		}
		r.bindings = append(r.bindings, binding{field: fd, claim: get})
	}
	r.publicSpec = spec(c.Public)
	r.backendSpec = spec(c.Backend)
	return r, nil
}

// spec describes method for connect-go.
func spec(method protoreflect.MethodDescriptor) connect.Spec {
	s := connect.Spec{
		Procedure:  "/" + string(method.Parent().FullName()) + "/" + string(method.Name()),
		Schema:     method,
		StreamType: connect.StreamTypeUnary,
	}
	if method.IsStreamingServer() {
		s.StreamType = connect.StreamTypeServer
	}
	if opts, ok := method.Options().(*descriptorpb.MethodOptions); ok {
		switch opts.GetIdempotencyLevel() {
		case descriptorpb.MethodOptions_NO_SIDE_EFFECTS:
			s.IdempotencyLevel = connect.IdempotencyNoSideEffects
		case descriptorpb.MethodOptions_IDEMPOTENT:
			s.IdempotencyLevel = connect.IdempotencyIdempotent
		}
	}
	return s
}

// Method returns the route as a connect-go method to register.
func (r *Route) Method() connect.Method {
	return connect.Method{Spec: r.publicSpec, Handler: r.serve}
}

// Procedure returns the public procedure, e.g. "/web.v1.TicketService/GetTicket".
func (r *Route) Procedure() string { return r.publicSpec.Procedure }

func (r *Route) serve(ctx context.Context, _ connect.Spec, stream connect.ServerStream) error {
	var user session.User
	if !r.anonymous {
		s, err := session.Require(ctx)
		if err != nil {
			return err
		}
		user = s.User
	}
	in := dynamicpb.NewMessage(r.public.Input())
	if err := stream.Receive(in); err != nil {
		return err
	}
	req := dynamicpb.NewMessage(r.backend.Input())
	r.plan.Request.ToBackend(req, in)
	for _, b := range r.bindings {
		if err := SetBinding(req, b.field, b.claim(user)); err != nil {
			// A claim that does not fit the field (a non-numeric subject for
			// an integer id): the session cannot use this route.
			return connect.NewError(connect.CodePermissionDenied, "this session cannot call this method")
		}
	}
	if r.backendSpec.StreamType == connect.StreamTypeUnary {
		// The answer's bytes, read by BackendCodec, become the public
		// answer directly: no backend message is built.
		var res rawAnswer
		if err := r.client.CallUnary(ctx, r.backendSpec, req, &res); err != nil {
			return r.backendError(ctx, err)
		}
		out := dynamicpb.NewMessage(r.public.Output())
		if err := r.plan.Response.ToPublicWire(out, res.b); err != nil {
			return r.malformedAnswer(ctx, err)
		}
		return stream.Send(out)
	}
	backend, err := r.client.CallServerStream(ctx, r.backendSpec, req)
	if err != nil {
		return r.backendError(ctx, err)
	}
	defer backend.Close()
	var res rawAnswer // its buffer is reused: ToPublicWire copies what it keeps
	for {
		if err := backend.Receive(&res); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return r.backendError(ctx, err)
		}
		out := dynamicpb.NewMessage(r.public.Output())
		if err := r.plan.Response.ToPublicWire(out, res.b); err != nil {
			return r.malformedAnswer(ctx, err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// malformedAnswer is what the browser gets for a backend answer that is not
// a valid encoding of the backend's type: an internal error, logged.
func (r *Route) malformedAnswer(ctx context.Context, err error) error {
	r.logger.LogAttrs(ctx, slog.LevelError, "backend answer is malformed",
		slog.String("procedure", r.backendSpec.Procedure), slog.String("error", err.Error()))
	return connect.NewError(connect.CodeInternal, "internal error")
}

// backendError is what the browser gets for a failed backend call: the
// backend's code with a generic message and no details, metadata or text of
// the backend's (logged here instead, with the request id the logger adds).
// The browser's own request went to the backend field by field, so codes
// such as invalid_argument or not_found are about it and are kept. The
// gateway's own verdict on the session passes unchanged; a backend's
// unauthenticated (it refused the gateway's token, after the renewal the
// client already tried) becomes unavailable, and unknown becomes internal.
func (r *Route) backendError(ctx context.Context, err error) error {
	if fanout.IsSessionVerdict(err) {
		return err
	}
	code := connect.CodeOf(err)
	r.logger.LogAttrs(ctx, slog.LevelWarn, "backend call failed",
		slog.String("procedure", r.backendSpec.Procedure), slog.String("code", code.String()), slog.String("error", err.Error()))
	switch code {
	case connect.CodeUnauthenticated:
		if errors.Is(ctx.Err(), context.Canceled) {
			code = connect.CodeCanceled
		} else {
			code = connect.CodeUnavailable
		}
	case connect.CodeUnknown:
		code = connect.CodeInternal
	}
	return connect.NewError(code, code.String())
}
