package session_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

// benchTokens are about the size of a real provider's: a JWT access token
// with a few claims, an opaque refresh token and an ID token, ~1.1 KB.
func benchTokens() session.Tokens {
	return session.Tokens{
		AccessToken:  "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + strings.Repeat("A", 620) + "." + strings.Repeat("s", 342),
		RefreshToken: strings.Repeat("r", 64),
		IDToken:      "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("I", 300) + "." + strings.Repeat("s", 86),
		AccessExpiry: time.Now().Add(24 * time.Hour),
	}
}

// benchSetup returns a manager on the real clock and the header of a
// request carrying one of its sessions.
func benchSetup(b *testing.B) (*session.Manager, *session.MemoryStore, http.Header, string) {
	b.Helper()
	store, err := session.NewMemoryStore(100000, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := session.NewManager(store, ringOf(b, 2, 1), newRefresher(time.Now))
	// Other sessions in the store, as in a running gateway.
	for range 1000 {
		if _, _, err := m.Create(context.Background(), alice, "sid", benchTokens()); err != nil {
			b.Fatal(err)
		}
	}
	ck, _, err := m.Create(context.Background(), alice, "sid-1", benchTokens())
	if err != nil {
		b.Fatal(err)
	}
	h := cookieHeader(ck.Name, ck.Value)
	h.Add("Cookie", "theme=dark; _ga=GA1.2.123456789.1700000000; lang=en")
	return m, store, h, ck.Value
}

// accessTokener is the part of clients.UserTokens the request path uses.
type accessTokener interface {
	AccessToken(ctx context.Context) (string, error)
}

func BenchmarkRequestPath(b *testing.B) {
	m, store, h, id := benchSetup(b)
	request := func(ctx context.Context) {
		ctx = m.Attach(ctx, h)
		// As backend clients hold it: behind their own interface.
		var ut accessTokener = m.UserTokens(ctx)
		tok, err := ut.AccessToken(ctx)
		if err != nil || tok == "" {
			b.Fatalf("AccessToken = %q, %v", tok, err)
		}
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			request(ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				request(ctx)
			}
		})
	})

	b.Run("cookie", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if session.IDFrom(session.Cookie{}, h) != id {
				b.Fatal("cookie not found")
			}
		}
	})
	key := session.StoreKey(id)
	b.Run("hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = session.StoreKey(id)
		}
	})
	b.Run("store-get", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := store.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	rec, err := store.Get(context.Background(), key)
	if err != nil {
		b.Fatal(err)
	}
	ring := ringOf(b, 2, 1)
	b.Run("keyring-open", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(rec.Sealed)))
		for b.Loop() {
			if _, err := ring.Open(rec.Sealed, []byte(key)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-and-decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(rec.Sealed)))
		for b.Loop() {
			if err := m.OpenPayload(key, rec.Sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
	plain, err := ring.Open(rec.Sealed, []byte(key))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p struct {
				User     session.User   `json:"u"`
				LogoutID string         `json:"l"`
				Tokens   session.Tokens `json:"t"`
			}
			if err := json.Unmarshal(plain, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("from-header", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := m.FromHeader(ctx, h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("sealed payload: %d bytes", len(rec.Sealed))
}
