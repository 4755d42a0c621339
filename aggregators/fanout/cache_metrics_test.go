package fanout

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestFetchCountsLookups: Fetch counts a miss, then hits, and callers that
// joined a miss in flight, under the cache's name.
func TestFetchCountsLookups(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c, err := NewCache[string, string](8, time.Minute, nil, WithCacheMetrics("things", mp))
	if err != nil {
		t.Fatal(err)
	}
	co := NewCoalescer[string, string](0)
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = Fetch(t.Context(), c, co, "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "v", nil
		})
	})
	<-started
	wg.Go(func() {
		_, _ = Fetch(t.Context(), c, co, "k", func(context.Context) (string, error) { return "v", nil })
	})
	waitForWaiters(t, t.Context(), co, "k", 2)
	close(release)
	wg.Wait()
	for range 3 {
		if v, err := Fetch(t.Context(), c, co, "k", func(context.Context) (string, error) { return "", errors.New("not cached") }); v != "v" || err != nil {
			t.Fatalf("Fetch after the miss = %q, %v", v, err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "custodian.cache.lookups" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				name, _ := dp.Attributes.Value("custodian.cache.name")
				result, _ := dp.Attributes.Value("custodian.cache")
				got[name.AsString()+"/"+result.AsString()] += dp.Value
			}
		}
	}
	want := map[string]int64{"things/miss": 1, "things/joined": 1, "things/hit": 3}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("lookups %v, want %v", got, want)
			break
		}
	}
}
