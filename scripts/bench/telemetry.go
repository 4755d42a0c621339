package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"gopkg.in/yaml.v3"
)

// Telemetry variants (--telemetry): how the gateway process is run.
const (
	// telemetryOff is the gateway as it runs by default, and as every run
	// before --telemetry measured it: the access log on (its default), no
	// trace exporter (spans are made unsampled, for the backends' trace
	// context, and never recorded), no admin listener, so no metrics.
	telemetryOff = "off"
	// telemetryOn exports traces with OTLP/HTTP to the harness's sink,
	// sampling 10 % of new traces, and serves /metrics on an admin
	// listener, which the harness scrapes once per measured run; the
	// access log stays on.
	telemetryOn = "on"
	// telemetryNoLog is off with telemetry.access_log: false: what the
	// access log itself costs.
	telemetryNoLog = "nolog"
)

// sampleRatio is the share of new traces the on variant keeps.
const sampleRatio = "0.1"

// parseTelemetry reads --telemetry: off, on or nolog, both (off and on),
// all (off, on, nolog), or a comma-separated list of variants.
func parseTelemetry(s string) ([]string, error) {
	switch s {
	case "both":
		return []string{telemetryOff, telemetryOn}, nil
	case "all":
		return []string{telemetryOff, telemetryOn, telemetryNoLog}, nil
	}
	var variants []string
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		switch v {
		case telemetryOff, telemetryOn, telemetryNoLog:
		default:
			return nil, fmt.Errorf("--telemetry %q: want off, on, nolog, both (off,on), all (off,on,nolog) or a comma-separated list", s)
		}
		if !slices.Contains(variants, v) {
			variants = append(variants, v)
		}
	}
	return variants, nil
}

// gatewayEnv returns the gateway's environment for variant: the harness's
// own without any OTEL_* variable (so that the shell's cannot change what
// is measured), plus, for on, the standard variables that export traces to
// the sink at endpoint.
func gatewayEnv(variant, endpoint string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") })
	if variant == telemetryOn {
		env = append(env,
			"OTEL_TRACES_EXPORTER=otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
			"OTEL_TRACES_SAMPLER=parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG="+sampleRatio,
		)
	}
	return env
}

// gatewayArgs returns the gateway's extra flags for variant: on has an
// admin listener on an ephemeral loopback port, and so has a gateway to
// profile, with pprof on it, and one whose metrics are read (a soak).
func gatewayArgs(variant string, profile, metrics bool) []string {
	var args []string
	if hasAdmin(variant, profile, metrics) {
		args = append(args, "--admin-addr", "127.0.0.1:0")
	}
	if profile {
		args = append(args, "--pprof")
	}
	return args
}

// hasAdmin says whether the gateway of gatewayArgs has an admin listener.
func hasAdmin(variant string, profile, metrics bool) bool {
	return variant == telemetryOn || profile || metrics
}

// withoutAccessLog returns the configuration data with
// telemetry.access_log: false, keeping the rest of the file as it is.
func withoutAccessLog(data []byte) ([]byte, error) {
	return withSetting(data, "telemetry", "access_log", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
}

// withSetting returns the configuration data with section.key set to
// value, keeping the rest of the file as it is.
func withSetting(data []byte, section, key string, value *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the configuration is not a YAML mapping")
	}
	root := doc.Content[0]
	m := mappingValue(root, section)
	if m == nil {
		m = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: section}, m)
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a mapping", section)
	}
	if v := mappingValue(m, key); v != nil {
		*v = *value
	} else {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, value)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// mappingValue returns the value of key in the mapping node m, nil if
// absent.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// traceSink is an OTLP/HTTP trace receiver that keeps nothing but counts:
// POST /v1/traces, protobuf, answered with an empty
// ExportTraceServiceResponse. It reads every span's trace id, so it can say
// how many traces came, not only how many requests.
type traceSink struct {
	srv *http.Server
	ln  net.Listener

	mu    sync.Mutex
	stats sinkStats
	seen  map[[16]byte]struct{}
}

// sinkStats is what a sink received.
type sinkStats struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Spans    int64 `json:"spans"`
	Traces   int64 `json:"traces"`
	// Rejected are requests it could not read (not protobuf, bad path):
	// answered 400, and counted for nothing else.
	Rejected int64 `json:"rejected"`
}

// startTraceSink listens on an ephemeral port of 127.0.0.1.
func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("trace sink: %w", err)
	}
	s := &traceSink{ln: ln, seen: map[[16]byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.receive)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }() // ends with close
	return s, nil
}

// endpoint is the base URL for OTEL_EXPORTER_OTLP_ENDPOINT.
func (s *traceSink) endpoint() string { return "http://" + s.ln.Addr().String() }

func (s *traceSink) receive(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, 64<<20)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.reject(w)
			return
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-protobuf") {
		s.reject(w)
		return
	}
	var traces [][16]byte
	spans, err := countSpans(data, func(id [16]byte) { traces = append(traces, id) })
	if err != nil {
		s.reject(w)
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.Bytes += int64(len(data))
	s.stats.Spans += int64(spans)
	for _, id := range traces {
		if _, ok := s.seen[id]; !ok {
			s.seen[id] = struct{}{}
			s.stats.Traces++
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
}

func (s *traceSink) reject(w http.ResponseWriter) {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
	http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
}

// received returns the counts so far.
func (s *traceSink) received() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *traceSink) close() {
	if s != nil {
		_ = s.srv.Close() // nothing to do if it fails
	}
}

// countSpans counts the spans of an ExportTraceServiceRequest and calls
// trace with each one's trace id, reading the protobuf wire format:
// resource_spans = 1 (ResourceSpans: scope_spans = 2 (ScopeSpans: spans =
// 2 (Span: trace_id = 1))).
func countSpans(data []byte, trace func([16]byte)) (int, error) {
	n := 0
	err := eachField(data, 1, func(resourceSpans []byte) error {
		return eachField(resourceSpans, 2, func(scopeSpans []byte) error {
			return eachField(scopeSpans, 2, func(span []byte) error {
				n++
				return eachField(span, 1, func(id []byte) error {
					if len(id) != 16 {
						return fmt.Errorf("trace id of %d bytes", len(id))
					}
					trace([16]byte(id))
					return nil
				})
			})
		})
	})
	return n, err
}

// eachField calls f with the bytes of every length-delimited field number
// num in the message msg, skipping the other fields.
func eachField(msg []byte, num protowire.Number, f func([]byte) error) error {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return protowire.ParseError(l)
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(msg)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			msg = msg[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if l < 0 {
			return protowire.ParseError(l)
		}
		msg = msg[l:]
	}
	return nil
}

// scrapeStats is what one GET /metrics of the admin listener returned.
type scrapeStats struct {
	Bytes  int `json:"bytes"`
	Series int `json:"series"`
	// Calls is the browser-facing calls the gateway has answered since it
	// started: the sum of rpc_server_call_duration_seconds_count.
	Calls int64 `json:"calls"`
}

// scrapeMetrics fetches http://admin/metrics as Prometheus would.
func scrapeMetrics(ctx context.Context, admin string) (scrapeStats, error) {
	body, err := getMetrics(ctx, admin)
	if err != nil {
		return scrapeStats{}, err
	}
	return parseScrape(body)
}

// getMetrics returns the text exposition of http://admin/metrics.
func getMetrics(ctx context.Context, admin string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping /metrics: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("scraping /metrics: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping /metrics: %s", res.Status)
	}
	return body, nil
}

// parseScrape counts the series of a text exposition and sums the calls
// counted by rpc_server_call_duration_seconds_count.
func parseScrape(body []byte) (scrapeStats, error) {
	st := scrapeStats{Bytes: len(body)}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		st.Series++
		if !strings.HasPrefix(line, "rpc_server_call_duration_seconds_count") {
			continue
		}
		found = true
		value := line[strings.LastIndexByte(line, ' ')+1:]
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return st, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		st.Calls += int64(n)
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if !found {
		return st, errors.New("/metrics has no rpc_server_call_duration_seconds_count: the gateway counted no call")
	}
	return st, nil
}

// telemetryReport is what the on variant sent where, over one backend
// mode: the sink's counts, and the admin listener's scrapes.
type telemetryReport struct {
	SampleRatio float64   `json:"sample_ratio"`
	Sink        sinkStats `json:"sink"`
	// GatewayCalls is the browser-facing calls the on gateways answered,
	// from their last scrapes (warm-ups and checking calls included): the
	// calls whose traces the sink may have received.
	GatewayCalls int64 `json:"gateway_calls"`
	Scrapes      int   `json:"scrapes"`
	// ScrapeBytes and ScrapeSeries are the last scrape's.
	ScrapeBytes  int `json:"scrape_bytes"`
	ScrapeSeries int `json:"scrape_series"`
}

// tracesPerCall is the share of the on gateways' calls whose trace the sink
// received: near the sample ratio if every sampled trace arrived.
func (t *telemetryReport) tracesPerCall() float64 {
	if t.GatewayCalls == 0 {
		return 0
	}
	return float64(t.Sink.Traces) / float64(t.GatewayCalls)
}
