package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/trace"
)

// traceWait bounds how long a page waits, in all, for the gateway to
// record the spans of its calls: the server span may end just after the
// answer was sent.
const traceWait = 200 * time.Millisecond

// maxDepth bounds the indentation of nested spans.
const maxDepth = 8

// call is one RPC a page made to the gateway, as the page saw it.
type call struct {
	procedure string // e.g. "AccountService/GetDashboard"
	requestID string // the answer's X-Request-Id
	start     time.Time
	end       time.Time
	code      connect.Code // 0 when it succeeded
}

// calls collects the RPCs of one page render; safe for concurrent use, as
// a page makes some of its calls in parallel.
type calls struct {
	mu   sync.Mutex
	list []call
}

func (c *calls) add(x call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, x)
}

func (c *calls) snapshot() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.list)
	slices.SortStableFunc(out, func(a, b call) int { return a.start.Compare(b.start) })
	return out
}

// waterfall is what the gateway did for a page: one row per span of the
// traces of the page's calls, on a time axis that starts with the page's
// first call.
type waterfall struct {
	Rows  []waterfallRow
	Total string // the axis' length, e.g. "42.1 ms"
}

// waterfallRow is one bar of the waterfall.
type waterfallRow struct {
	Depth    int
	Name     string
	Summary  string // allow-listed attributes, e.g. "backend=orders · code=unavailable"
	Kind     string // "server", "client", "internal", ...
	Left     string // percent of the axis, e.g. "12.50"
	Width    string
	Duration string // e.g. "3.2 ms"
	Failed   bool
	// Untraced marks a call whose trace was not recorded in time: the bar
	// is the call as the page saw it.
	Untraced bool
}

// buildWaterfall draws the page's calls from the spans the recorder holds
// for them. With no recorder or no calls it returns nil.
func buildWaterfall(ctx context.Context, rec *SpanRecorder, page []call) *waterfall {
	if rec == nil || len(page) == 0 {
		return nil
	}
	deadline := time.Now().Add(traceWait)
	type bar struct {
		depth      int
		name       string
		summary    string
		kind       string
		start, end time.Time
		failed     bool
		untraced   bool
	}
	var bars []bar
	for _, c := range page {
		spans, ok := rec.Request(ctx, c.requestID, max(time.Until(deadline), 0))
		if !ok || len(spans) == 0 {
			bars = append(bars, bar{name: c.procedure, summary: "no trace recorded", kind: "page", start: c.start, end: c.end, failed: c.code != 0, untraced: true})
			continue
		}
		for _, n := range nest(spans) {
			s := n.span
			bars = append(bars, bar{depth: n.depth, name: s.Name, summary: summarize(s), kind: kindName(s.Kind), start: s.Start, end: s.End, failed: s.Failed})
		}
	}
	base, last := bars[0].start, bars[0].end
	for _, b := range bars {
		if b.start.Before(base) {
			base = b.start
		}
		if b.end.After(last) {
			last = b.end
		}
	}
	total := last.Sub(base)
	if total <= 0 {
		total = time.Microsecond
	}
	w := &waterfall{Total: millis(total)}
	for _, b := range bars {
		left := float64(b.start.Sub(base)) / float64(total) * 100
		width := max(float64(b.end.Sub(b.start))/float64(total)*100, 0.5)
		left = min(max(left, 0), 99.5)
		width = min(width, 100-left)
		w.Rows = append(w.Rows, waterfallRow{
			Depth:    b.depth,
			Name:     b.name,
			Summary:  b.summary,
			Kind:     b.kind,
			Left:     fmt.Sprintf("%.2f", left),
			Width:    fmt.Sprintf("%.2f", width),
			Duration: millis(b.end.Sub(b.start)),
			Failed:   b.failed,
			Untraced: b.untraced,
		})
	}
	return w
}

// nested is a span and how deep it sits in its trace.
type nested struct {
	span  Span
	depth int
}

// nest orders spans (sorted by start) depth first: each span after its
// parent, siblings by start. A span whose parent was not recorded is a
// root.
func nest(spans []Span) []nested {
	known := make(map[trace.SpanID]bool, len(spans))
	for _, s := range spans {
		known[s.SpanID] = true
	}
	children := make(map[trace.SpanID][]Span)
	var roots []Span
	for _, s := range spans {
		if s.ParentID.IsValid() && known[s.ParentID] && s.ParentID != s.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	out := make([]nested, 0, len(spans))
	seen := make(map[trace.SpanID]bool, len(spans))
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		if seen[s.SpanID] {
			return
		}
		seen[s.SpanID] = true
		out = append(out, nested{s, min(depth, maxDepth)})
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return out
}

// attributeLabels are the short names of shownAttributes.
var attributeLabels = map[string]string{
	"custodian.backend":          "backend",
	"rpc.method":                 "method",
	"rpc.grpc.status_code":       "grpc status",
	"rpc.connect_rpc.error_code": "code",
	"rpc.response.status_code":   "code",
	"custodian.cache":            "cache",
	"custodian.cache.name":       "cache name",
	"custodian.cache.hits":       "hits",
	"custodian.cache.misses":     "misses",
	"custodian.part":             "part",
	"custodian.breaker":          "breaker",
	"custodian.flight":           "flight",
	"custodian.reason":           "reason",
	"custodian.outcome":          "outcome",
	"custodian.session.state":    "session",
}

// summarize lists a span's allow-listed attributes, each value cut short.
func summarize(s Span) string {
	parts := make([]string, 0, len(s.Attributes))
	for _, kv := range s.Attributes {
		v := kv.Value.Emit()
		if kv.Key == "rpc.method" && v == s.Name {
			continue // the span's name already says it
		}
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		parts = append(parts, attributeLabels[string(kv.Key)]+"="+v)
	}
	return strings.Join(parts, " · ")
}

func kindName(k trace.SpanKind) string {
	switch k {
	case trace.SpanKindServer:
		return "server"
	case trace.SpanKindClient:
		return "client"
	case trace.SpanKindProducer:
		return "producer"
	case trace.SpanKindConsumer:
		return "consumer"
	default:
		return "internal"
	}
}

// millis formats d in milliseconds with one decimal.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
