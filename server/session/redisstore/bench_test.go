package redisstore_test

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/session/redisstore"
)

func TestMain(m *testing.M) {
	// go-redis logs each failed dial to stderr; the outage tests make many.
	redis.SetLogger(discardLogger{})
	os.Exit(m.Run())
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// benchStore returns a store on a new redis-server holding one live
// session "k" with a 2 KiB sealed box, about the size of a session with
// an access, a refresh and an ID token.
func benchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	srv := redistest.Start(b)
	s := redisstore.New(newClient(b, redisstore.ClientConfig{URL: srv.URL()}))
	rec := liveRecord(time.Now(), "248289761001", "b4c2e9f0-sid")
	rec.Sealed = make([]byte, 2048)
	rand.Read(rec.Sealed)
	mustPut(b, s, "k", rec)
	return s
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, "k"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkTouch(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Touch(ctx, "k", now, now.Add(30*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateSealed(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	sealed := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.UpdateSealed(ctx, "k", sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	rec := liveRecord(time.Now(), "248289761001", "b4c2e9f0-sid")
	rec.Sealed = make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Put(ctx, "k", rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFind(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if keys, err := s.Find(ctx, "248289761001", ""); err != nil || len(keys) != 1 {
			b.Fatal(keys, err)
		}
	}
}

func BenchmarkLease(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := s.Lease(ctx, "refresh:k", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
