package clients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"

	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/telemetry"
)

// outbound decorates every backend call: its own timeout, the bearer token
// of the backend's policy, the request id, the trace context, the circuit
// breaker, and one renewal of a refused user token; each call is noted for
// the access log. The trace context is the client span's, set by the
// otelconnect interceptor around this one. Nothing from the browser's
// request is ever copied onto a backend call.
type outbound struct {
	backend string
	timeout time.Duration
	policy  tokenPolicy
	breaker *breaker
	logger  *slog.Logger
	metrics *callMetrics // nil without metrics
}

// intercept is the backend's connect.ClientInterceptor. Unary calls get the
// whole treatment; streams live as long as the caller's context and only get
// the token, request id and trace context.
func (o *outbound) intercept(next connect.ClientFunc) connect.ClientFunc {
	return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
		info, ok := connect.CallInfoForClientContext(ctx)
		if !ok {
			ctx, info = connect.NewClientContext(ctx)
		}
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(telemetry.Backend.String(o.backend))
		}
		start := time.Now()
		token, err := o.decorate(ctx, info.RequestHeader())
		if err != nil {
			o.note(ctx, spec, start, err)
			return nil, err
		}
		if spec.StreamType != connect.StreamTypeUnary {
			return next(ctx, spec)
		}
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			callCtx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		return &unaryCall{
			o: o, next: next, spec: spec, info: info, token: token,
			callerCtx: ctx, callCtx: callCtx, cancel: cancel, start: start,
		}, nil
	}
}

// note records a finished unary call in the metrics and for the access log
// of the browser call it was made for.
func (o *outbound) note(ctx context.Context, spec connect.Spec, start time.Time, err error) {
	d := time.Since(start)
	o.metrics.record(ctx, spec.Procedure, err, d)
	call := telemetry.FromContext(ctx)
	if call == nil {
		return
	}
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	call.AddBackend(telemetry.BackendCall{Backend: o.backend, Method: spec.Procedure, Code: code, Duration: d})
}

// decorate sets the bearer token and request id and returns
// the token. Errors of the token policy reach the caller unconverted: a
// Connect error as it is, any other (such as the session's verdict) wrapped.
func (o *outbound) decorate(ctx context.Context, header *connect.Header) (string, error) {
	token, err := o.policy.token(ctx)
	if err != nil {
		if _, ok := errors.AsType[*connect.Error](err); ok {
			return "", err
		}
		return "", fmt.Errorf("backend %q: %w", o.backend, err)
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	} else {
		header.Delete("Authorization")
	}
	if id := requestid.FromContext(ctx); id != "" {
		header.Set(requestid.Header, id)
	}
	return token, nil
}

// unaryCall is the stream the interceptor hands the client for a unary
// call. It keeps the request and makes the call in Receive, where it can
// run each attempt through the breaker and send it again with a renewed
// token.
type unaryCall struct {
	o         *outbound
	next      connect.ClientFunc
	spec      connect.Spec
	info      *connect.CallInfo
	token     string
	callerCtx context.Context // the caller's, without the backend's timeout
	callCtx   context.Context
	cancel    context.CancelFunc
	start     time.Time

	req      any
	sent     bool
	received bool
}

// SendHeaders does nothing: the headers go with the request.
func (c *unaryCall) SendHeaders() error { return nil }

func (c *unaryCall) Send(msg any) error {
	if c.sent {
		return errors.New("clients: unary call sent more than once")
	}
	c.req, c.sent = msg, true
	return nil
}

func (c *unaryCall) CloseSend() error { return nil }

func (c *unaryCall) Receive(msg any) error {
	if c.received {
		return io.EOF
	}
	c.received = true
	defer c.cancel()
	err := c.receive(msg)
	c.o.note(c.callerCtx, c.spec, c.start, err)
	return err
}

// receive makes the call, renewing a refused user token once.
func (c *unaryCall) receive(msg any) error {
	err := c.attempt(msg)
	if connect.CodeOf(err) != connect.CodeUnauthenticated || c.token == "" {
		return err
	}
	// The backend refused the user's token: renew it once.
	renewed, ut, acting, renewErr := c.o.policy.renew(c.callerCtx, c.token)
	if !acting {
		return err
	}
	if renewErr != nil {
		return renewErr
	}
	if !idempotent(c.spec) {
		// Not safe to send twice; the next call carries the new token.
		return connect.NewError(connect.CodeUnavailable, c.o.backend+" refused the request; try again")
	}
	c.info.RequestHeader().Set("Authorization", "Bearer "+renewed)
	clearHeader(c.info.ResponseHeader())
	clearHeader(c.info.ResponseTrailer())
	if m, ok := msg.(proto.Message); ok {
		proto.Reset(m)
	}
	err = c.attempt(msg)
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		c.o.logger.WarnContext(c.callerCtx, "backend refused a renewed user token",
			"backend", c.o.backend, "procedure", c.spec.Procedure)
		return ut.Reject(c.callerCtx)
	}
	return err
}

func (c *unaryCall) Close() error {
	c.cancel()
	return nil
}

// attempt sends the request once, through the breaker, and receives the
// answer into msg.
func (c *unaryCall) attempt(msg any) error {
	return c.o.breaker.call(c.callerCtx, func() error {
		stream, err := c.next(c.callCtx, c.spec)
		if err != nil {
			return err
		}
		defer func() { _ = stream.Close() }()
		// io.EOF from the send side means the backend already answered:
		// Receive has its verdict.
		if c.sent {
			if err := stream.Send(c.req); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
		}
		if err := stream.CloseSend(); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return stream.Receive(msg)
	})
}

// idempotent reports whether a method may be sent twice.
func idempotent(spec connect.Spec) bool {
	return spec.IdempotencyLevel == connect.IdempotencyNoSideEffects || spec.IdempotencyLevel == connect.IdempotencyIdempotent
}

func clearHeader(h *connect.Header) {
	var keys []string
	for k := range h.All() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		h.Delete(k)
	}
}
