package clients_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/otelconnect"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/custodian-bff/custodian/clients"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
)

// TestCallMetricsAsOtelconnect makes the same calls through a Backend and
// through a bare connect-go client with otelconnect's interceptor, over
// each protocol, and checks that both record rpc.client.call.duration
// with the same attributes, counts and buckets: the backend records it
// itself, from attribute sets built once, where otelconnect built them
// per call.
func TestCallMetricsAsOtelconnect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		protocol clients.Protocol
		opts     []connecthttp.Option
	}{
		{clients.ProtocolConnect, nil},
		{clients.ProtocolGRPC, []connecthttp.Option{connecthttp.WithGRPC()}},
		{clients.ProtocolGRPCWeb, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
	for _, c := range cases {
		t.Run(string(c.protocol), func(t *testing.T) {
			t.Parallel()
			_, url := startCatalog(t)
			ours := sdkmetric.NewManualReader()
			backend, err := clients.New(clients.Spec{Name: "catalog", URL: url, Protocol: c.protocol, Token: clients.TokenNone},
				clients.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(ours))))
			if err != nil {
				t.Fatal(err)
			}
			theirs := sdkmetric.NewManualReader()
			observe, err := otelconnect.NewClientInterceptor(otelconnect.WithoutTracing(),
				otelconnect.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(theirs))))
			if err != nil {
				t.Fatal(err)
			}
			bare := connect.NewClient(connecthttp.NewTransport(clients.NewHTTPClient(), url, c.opts...), observe)
			for _, client := range []*connect.Client{backend.Client(), bare} {
				catalog := catalogv1connect.NewCatalogServiceClient(client)
				for range 2 {
					if _, err := catalog.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: "p-1"}); err != nil {
						t.Fatal(err)
					}
				}
				// The catalog does not serve BatchGetProducts.
				if _, err := catalog.BatchGetProducts(t.Context(), &catalogv1.BatchGetProductsRequest{}); connect.CodeOf(err) != connect.CodeUnimplemented {
					t.Fatalf("BatchGetProducts: %v, want unimplemented", err)
				}
			}
			got, want := callDurations(t, ours), callDurations(t, theirs)
			if len(got) != 2 || !slices.Equal(got, want) {
				t.Errorf("the backend recorded\n%s\nwant, as otelconnect\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// callDurations returns the data points of rpc.client.call.duration in
// reader: attributes, count and bucket bounds, one line each, sorted.
func callDurations(t *testing.T, reader sdkmetric.Reader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if m.Name != "rpc.client.call.duration" || !ok {
				continue
			}
			for _, dp := range h.DataPoints {
				var b strings.Builder
				for _, kv := range dp.Attributes.ToSlice() {
					fmt.Fprintf(&b, "%s=%s ", kv.Key, kv.Value.Emit())
				}
				fmt.Fprintf(&b, "unit=%s buckets=%v count=%d (%s)", m.Unit, dp.Bounds, dp.Count, m.Description)
				lines = append(lines, b.String())
			}
		}
	}
	slices.Sort(lines)
	return lines
}
