package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"gopkg.in/yaml.v3"
)

// TestTraceSink exports spans to the sink with the OTLP/HTTP exporter the
// gateway uses, gzipped and not: the sink counts every span and trace.
func TestTraceSink(t *testing.T) {
	sink, err := startTraceSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	ctx := context.Background()
	for _, compression := range []otlptracehttp.Compression{otlptracehttp.NoCompression, otlptracehttp.GzipCompression} {
		exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(sink.endpoint()+"/v1/traces"), otlptracehttp.WithCompression(compression))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
		tracer := tp.Tracer("bench-test")
		for range 3 { // 3 traces of 4 spans
			ctx, root := tracer.Start(ctx, "root")
			for range 3 {
				_, child := tracer.Start(ctx, "child")
				child.End()
			}
			root.End()
		}
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.received()
	if got.Spans != 24 || got.Traces != 6 || got.Requests < 2 || got.Bytes == 0 || got.Rejected != 0 {
		t.Errorf("sink received %+v, want 24 spans in 6 traces, in 2 requests or more, none rejected", got)
	}
}

func TestCountSpansRejectsGarbage(t *testing.T) {
	if _, err := countSpans([]byte{0x0a, 0x05, 0x01}, func([16]byte) {}); err == nil {
		t.Error("a truncated message: no error")
	}
	n, err := countSpans(nil, func([16]byte) {})
	if n != 0 || err != nil {
		t.Errorf("an empty request: %d spans, %v", n, err)
	}
}

func TestWithoutAccessLog(t *testing.T) {
	for _, in := range []string{
		"listen: 127.0.0.1:8080\nbackends:\n  - name: a\n    url: http://a\n",
		"listen: 127.0.0.1:8080\ntelemetry:\n  access_log: true\n  admin: {listen: 127.0.0.1:0}\n",
	} {
		out, err := withoutAccessLog([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Listen    string `yaml:"listen"`
			Telemetry struct {
				AccessLog *bool `yaml:"access_log"`
				Admin     struct {
					Listen string `yaml:"listen"`
				} `yaml:"admin"`
			} `yaml:"telemetry"`
		}
		if err := yaml.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Listen != "127.0.0.1:8080" || cfg.Telemetry.AccessLog == nil || *cfg.Telemetry.AccessLog {
			t.Errorf("withoutAccessLog(%q) = %q", in, out)
		}
		if strings.Contains(in, "admin") && cfg.Telemetry.Admin.Listen != "127.0.0.1:0" {
			t.Errorf("withoutAccessLog(%q) lost telemetry.admin: %q", in, out)
		}
	}
}

func TestGatewayEnv(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on") // the shell's must not reach the gateway
	off := gatewayEnv(telemetryOff, "")
	if slices.ContainsFunc(off, func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") }) {
		t.Errorf("off: OTEL_ variables in %q", off)
	}
	if len(off) == 0 || !slices.Contains(off, "PATH="+os.Getenv("PATH")) {
		t.Error("off: the environment is not the harness's")
	}
	on := gatewayEnv(telemetryOn, "http://127.0.0.1:4318")
	for _, want := range []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.1"} {
		if !slices.Contains(on, want) {
			t.Errorf("on: no %s", want)
		}
	}
	if slices.Contains(on, "OTEL_TRACES_SAMPLER=always_on") {
		t.Error("on: the shell's sampler reached the gateway")
	}
}

func TestParseScrape(t *testing.T) {
	body := `# HELP rpc_server_call_duration_seconds x
# TYPE rpc_server_call_duration_seconds histogram
rpc_server_call_duration_seconds_bucket{rpc_method="a",le="+Inf"} 7
rpc_server_call_duration_seconds_sum{rpc_method="a"} 0.5
rpc_server_call_duration_seconds_count{rpc_method="a",rpc_response_status_code="OK"} 7
rpc_server_call_duration_seconds_count{rpc_method="b",rpc_response_status_code="NOT_FOUND"} 1.2e+06
go_goroutines 12
`
	st, err := parseScrape([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 1200007 || st.Series != 5 || st.Bytes != len(body) {
		t.Errorf("parseScrape: %+v", st)
	}
	if _, err := parseScrape([]byte("go_goroutines 1\n")); err == nil {
		t.Error("a scrape without calls: no error")
	}
}
