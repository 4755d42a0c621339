package custodian

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/server/config"
)

// telemetry is what a gateway traces and measures with, and what it must
// flush and close when it stops.
type telemetry struct {
	tracer trace.TracerProvider
	meters metric.MeterProvider
	admin  *http.Server // nil without an admin listener
	adminL net.Listener // the admin listener, open from New until Serve returns
	flush  []func(context.Context) error
}

// serviceName names the gateway in exported spans unless OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const serviceName = "custodian"

// newTelemetry builds the providers the options did not give from cfg's
// telemetry section and the standard OTEL_* environment variables, and
// opens the admin listener.
func newTelemetry(cfg *config.Config, o *options) (_ *telemetry, err error) {
	t := &telemetry{tracer: o.tracer, meters: o.meters}
	defer func() {
		if err != nil {
			_ = t.close(context.Background())
		}
	}()
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(serviceName)))
	if err != nil {
		return nil, fmt.Errorf("custodian: telemetry: %w", err)
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" || os.Getenv("OTEL_RESOURCE_ATTRIBUTES") != "" {
		// The environment's service name and attributes win.
		if res, err = resource.Merge(res, resource.Environment()); err != nil {
			return nil, fmt.Errorf("custodian: telemetry: %w", err)
		}
	}
	if t.tracer == nil {
		if t.tracer, err = t.newTracerProvider(cfg.Telemetry.Traces, res, o.processors); err != nil {
			return nil, err
		}
	}
	if cfg.Telemetry.Admin.Listen == "" {
		if t.meters == nil {
			t.meters = noop.NewMeterProvider()
		}
		return t, nil
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if t.meters == nil {
		exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("custodian: telemetry: prometheus: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res))
		t.meters = mp
		t.flush = append(t.flush, mp.Shutdown)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	if cfg.Telemetry.Admin.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if t.adminL, err = net.Listen("tcp", cfg.Telemetry.Admin.Listen); err != nil {
		return nil, fmt.Errorf("custodian: telemetry.admin.listen: %w", err)
	}
	t.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return t, nil
}

// newTracerProvider returns the SDK provider of traces: with an OTLP
// exporter when the configuration or OTEL_TRACES_EXPORTER asks for one, and
// the given processors; with neither, it makes spans with real ids, so
// backends get a trace context, and records nothing.
func (t *telemetry) newTracerProvider(tc config.Traces, res *resource.Resource, processors []sdktrace.SpanProcessor) (trace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, sp := range processors {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	if r := tc.SampleRatio; r != nil {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*r))))
	}
	exporterName := tc.Exporter
	if exporterName == "" {
		exporterName = os.Getenv("OTEL_TRACES_EXPORTER")
	}
	if exporterName == config.ExporterOTLP {
		protocol := firstOf(tc.Protocol, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), config.OTLPHTTPProtobuf)
		var exporter sdktrace.SpanExporter
		var err error
		switch protocol {
		case config.OTLPGRPC:
			var eo []otlptracegrpc.Option
			if tc.Endpoint != "" {
				eo = append(eo, otlptracegrpc.WithEndpointURL(tc.Endpoint))
			}
			exporter, err = otlptracegrpc.New(context.Background(), eo...)
		case config.OTLPHTTPProtobuf:
			var eo []otlptracehttp.Option
			if tc.Endpoint != "" {
				eo = append(eo, otlptracehttp.WithEndpointURL(tracesURL(tc.Endpoint)))
			}
			exporter, err = otlptracehttp.New(context.Background(), eo...)
		default:
			return nil, fmt.Errorf("custodian: telemetry: OTLP protocol %s is not grpc or http/protobuf", strconv.Quote(protocol))
		}
		if err != nil {
			return nil, fmt.Errorf("custodian: telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exporter))
	} else if len(processors) == 0 {
		// Nothing is exported, so nothing is recorded: new traces get real
		// ids, unsampled, and a continued trace keeps its caller's flag.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.flush = append(t.flush, tp.Shutdown)
	return tp, nil
}

// tracesURL is where OTLP/HTTP spans are posted for the configured
// endpoint: a collector's base URL, like OTEL_EXPORTER_OTLP_ENDPOINT, gets
// the signal's path /v1/traces; a URL with a path is used as it is.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// serveAdmin serves the admin listener until ctx ends.
func (t *telemetry) serveAdmin(ctx context.Context) error {
	if t.admin == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = t.admin.Close() })
	defer stop()
	if err := t.admin.Serve(t.adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("custodian: admin listener: %w", err)
	}
	return nil
}

// close flushes what is still buffered (spans) and closes the admin
// listener.
func (t *telemetry) close(ctx context.Context) error {
	var errs []error
	if t.admin != nil {
		errs = append(errs, t.admin.Close())
	} else if t.adminL != nil {
		errs = append(errs, t.adminL.Close())
	}
	for _, f := range t.flush {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
