package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/redisstore"
)

// TestCountErrors runs the store against a real redis-server while it
// answers, while it is paused past the read timeout, and after it is gone:
// only the failures are counted, by command, and a missing key is none.
func TestCountErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL(), ReadTimeout: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	redisstore.CountErrors(client, mp)
	store := redisstore.New(client, redisstore.WithPrefix(newPrefix()))
	ctx := t.Context()

	if _, err := store.Get(ctx, "absent"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	if err := client.Get(ctx, "no-such-key").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a missing key = %v, want redis.Nil", err)
	}
	if got := errorCounts(t, reader); len(got) != 0 {
		t.Fatalf("errors counted while Redis answers: %v", got)
	}

	srv.Kill()
	if _, err := store.Get(ctx, "absent"); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get with Redis gone = %v, want a failure", err)
	}
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("PING with Redis gone succeeded")
	}
	got := errorCounts(t, reader)
	if got["ping"] < 1 || len(got) < 2 {
		t.Fatalf("errors counted with Redis gone: %v, want ping and the store's command", got)
	}
	for op := range got {
		if op == "" || len(op) > 16 {
			t.Errorf("operation label %q: want a Redis command name", op)
		}
	}
}

// errorCounts returns custodian.redis.errors by operation.
func errorCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]int64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "custodian.redis.errors" {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("custodian.redis.errors is a %T, want a sum", m.Data)
			}
			for _, dp := range sum.DataPoints {
				op, _ := dp.Attributes.Value("custodian.operation")
				counts[op.AsString()] += dp.Value
			}
		}
	}
	return counts
}
