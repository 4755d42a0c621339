package storefront_test

import (
	"context"
	"sync/atomic"
	"testing"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// BenchmarkGetDashboard measures one browser dashboard through the real
// gateway on loopback: the demo world's backends and provider in the same
// process, alice signed in, Connect binary over HTTP/1.1. Each call loads
// the session, calls profiles, loyalty (exchanged token, kept) and orders
// in parallel and reads product details from the catalog cache, which the
// warm-up call filled. Allocations are the whole process's: browser client,
// gateway and the four demo backends.
//
//	go test -run '^$' -bench GetDashboard -benchmem ./aggregators/storefront/
func BenchmarkGetDashboard(b *testing.B) {
	e := gt.NewDemoEnv(b)
	br := e.SignedIn(b, "alice")
	client := br.Account(connectBinary)
	var missing atomic.Int64
	call := func() error {
		res, err := client.GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{})
		if err != nil {
			return err
		}
		if len(res.GetMissingSections()) != 0 {
			missing.Add(1)
		}
		return nil
	}
	if err := call(); err != nil {
		b.Fatalf("warm-up GetDashboard: %v", err)
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		b.ReportMetric(float64(missing.Swap(0))/float64(b.N), "incomplete/op")
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		missing.Store(0)
		for b.Loop() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})

	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		missing.Store(0)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})
}
