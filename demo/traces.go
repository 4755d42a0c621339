package demo

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDAttribute is the attribute of the gateway's server span that
// names the request, with the value of the X-Request-Id response header.
const RequestIDAttribute = "custodian.request_id"

// shownAttributes are the only span attributes the waterfall shows: low
// cardinality, never a user's data, never free text. Every other
// attribute is dropped when the span is recorded.
var shownAttributes = []attribute.Key{
	"custodian.backend",
	"rpc.method",
	"rpc.grpc.status_code",
	"rpc.connect_rpc.error_code",
	"rpc.response.status_code",
	"custodian.cache",
	"custodian.cache.name",
	"custodian.cache.hits",
	"custodian.cache.misses",
	"custodian.part",
	"custodian.breaker",
	"custodian.flight",
	"custodian.reason",
	"custodian.outcome",
	"custodian.session.state",
}

// Bounds of what a SpanRecorder keeps.
const (
	recordedTraces   = 512
	spansPerTrace    = 256
	recordedRequests = 1024
)

// Span is what the waterfall knows of an ended span: its name, place in
// the trace, timing, whether it failed, and the allow-listed attributes.
type Span struct {
	Name     string
	SpanID   trace.SpanID
	ParentID trace.SpanID // invalid for a root
	Kind     trace.SpanKind
	Start    time.Time
	End      time.Time
	Failed   bool
	// Attributes holds the present attributes of shownAttributes, in that
	// order.
	Attributes []attribute.KeyValue
}

// SpanRecorder is an OpenTelemetry span processor that keeps the ended
// spans of recent traces in memory, so that the demo's pages can draw what
// the gateway did for each of their calls. It keeps a bounded number of
// traces (least recently used go first) and only the parts of a span the
// waterfall shows. It is safe for concurrent use.
type SpanRecorder struct {
	mu        sync.Mutex
	traces    *simplelru.LRU[trace.TraceID, []Span]
	requests  *simplelru.LRU[string, trace.TraceID]
	requestCh chan struct{} // closed and replaced when a request's span ends
}

var _ sdktrace.SpanProcessor = (*SpanRecorder)(nil)

// NewSpanRecorder returns an empty recorder.
func NewSpanRecorder() *SpanRecorder {
	traces, _ := simplelru.NewLRU[trace.TraceID, []Span](recordedTraces, nil)     // size > 0: never fails
	requests, _ := simplelru.NewLRU[string, trace.TraceID](recordedRequests, nil) // size > 0: never fails
	return &SpanRecorder{traces: traces, requests: requests, requestCh: make(chan struct{})}
}

// OnStart does nothing: only ended spans are kept.
func (*SpanRecorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd keeps the span's allow-listed parts under its trace id, and
// remembers the trace of a span that names a request.
func (r *SpanRecorder) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	if !sc.IsValid() {
		return
	}
	span := Span{
		Name:     s.Name(),
		SpanID:   sc.SpanID(),
		ParentID: s.Parent().SpanID(),
		Kind:     s.SpanKind(),
		Start:    s.StartTime(),
		End:      s.EndTime(),
		Failed:   s.Status().Code == codes.Error,
	}
	var request string
	for _, kv := range s.Attributes() {
		if kv.Key == RequestIDAttribute {
			request = kv.Value.AsString()
		}
	}
	for _, key := range shownAttributes {
		for _, kv := range s.Attributes() {
			if kv.Key == key {
				span.Attributes = append(span.Attributes, kv)
				break
			}
		}
	}
	if span.Kind == trace.SpanKindClient {
		span.Name, span.Attributes = backendCallName(span.Name), withoutMethod(span.Attributes)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	spans, _ := r.traces.Get(sc.TraceID())
	if len(spans) < spansPerTrace {
		r.traces.Add(sc.TraceID(), append(spans, span))
	}
	if request != "" {
		r.requests.Add(request, sc.TraceID())
		close(r.requestCh)
		r.requestCh = make(chan struct{})
	}
}

// backendCallName names a backend call by its bare method: the page shows
// which backend was called (custodian.backend) and how it answered, never
// the backend's own schema (package and service), as no answer of the
// gateway does.
func backendCallName(procedure string) string {
	return procedure[strings.LastIndexByte(procedure, '/')+1:]
}

// withoutMethod drops rpc.method, which names the backend's service.
func withoutMethod(attrs []attribute.KeyValue) []attribute.KeyValue {
	return slices.DeleteFunc(attrs, func(kv attribute.KeyValue) bool { return kv.Key == "rpc.method" })
}

// Shutdown does nothing: there is nothing to flush.
func (*SpanRecorder) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: there is nothing to flush.
func (*SpanRecorder) ForceFlush(context.Context) error { return nil }

// Request returns the spans recorded so far of the trace whose span named
// request, sorted by start. The gateway may end its server span just after
// it answered, so Request waits up to wait for it to be recorded; it
// returns false when it was not.
func (r *SpanRecorder) Request(ctx context.Context, request string, wait time.Duration) ([]Span, bool) {
	if request == "" {
		return nil, false
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		id, ok := r.requests.Get(request)
		var spans []Span
		if ok {
			recorded, _ := r.traces.Peek(id)
			spans = slices.Clone(recorded)
		}
		changed := r.requestCh
		r.mu.Unlock()
		if ok {
			slices.SortStableFunc(spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
			return spans, true
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}
