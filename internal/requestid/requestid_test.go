package requestid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var seen string
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = FromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(Header, "attacker-chosen\nvalue")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if seen == "" || seen == "attacker-chosen\nvalue" {
		t.Fatalf("handler saw id %q, want a fresh one", seen)
	}
	if got := rec.Header().Get(Header); got != seen {
		t.Fatalf("response header %q, context %q: want the same id", got, seen)
	}
	if len(seen) != 16 {
		t.Fatalf("id %q has %d characters, want 16", seen, len(seen))
	}
}

func TestNewIsUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		id := New()
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
	if FromContext(context.Background()) != "" {
		t.Fatal("empty context has an id")
	}
}
