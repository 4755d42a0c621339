package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/ratelimit"
)

// fakeShared is a Shared store in memory that can be made to fail. It is a
// single token bucket set that does not refill: enough to tell which
// buckets a Limiter asks for and in which order.
type fakeShared struct {
	mu      sync.Mutex
	tokens  map[string]int
	fail    error
	calls   []string // "allow key" or "refund key"
	release chan struct{}
}

func newFakeShared() *fakeShared { return &fakeShared{tokens: map[string]int{}} }

func (f *fakeShared) Allow(ctx context.Context, key string, limit ratelimit.Limit) (bool, time.Duration, error) {
	f.mu.Lock()
	release := f.release
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return false, 0, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "allow "+key)
	if f.fail != nil {
		return false, 0, f.fail
	}
	left, seen := f.tokens[key]
	if !seen {
		left = limit.Burst
	}
	if left < 1 {
		return false, 1500 * time.Millisecond, nil
	}
	f.tokens[key] = left - 1
	return true, 0, nil
}

func (f *fakeShared) Refund(_ context.Context, key string, _ ratelimit.Limit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "refund "+key)
	if f.fail != nil {
		return f.fail
	}
	f.tokens[key]++
	return nil
}

func (f *fakeShared) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// takeCalls returns the calls made since the last takeCalls.
func (f *fakeShared) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := f.calls
	f.calls = nil
	return calls
}

func serve(h http.Handler, c call) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, c.request())
	return rec
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// TestSharedBucketsOrder checks what a Limiter asks a shared store: the
// buckets that apply, most specific first, stopping at the first refusal
// and giving back what it took before it; the refusal carries the store's
// Retry-After, rounded up.
func TestSharedBucketsOrder(t *testing.T) {
	t.Parallel()
	const procedure = "/acme.v1.Shop/Buy"
	shared := newFakeShared()
	cfg := ratelimit.Config{
		PerIP:      ratelimit.Limit{Rate: 1, Burst: 2},
		PerSession: ratelimit.Limit{Rate: 1, Burst: 5},
		Login:      ratelimit.Limit{Rate: 1, Burst: 5},
		Methods:    map[string]ratelimit.Limit{procedure: {Rate: 1, Burst: 1}},
	}
	h := ratelimit.New(cfg, testCookie, nil, ratelimit.WithShared(shared), ratelimit.WithClock(newFakeClock().Now)).Middleware(okHandler())

	if rec := serve(h, call{method: http.MethodPost, path: procedure, session: "s1"}); rec.Code != http.StatusNoContent {
		t.Fatalf("first call: status %d", rec.Code)
	}
	calls := shared.takeCalls()
	if len(calls) != 3 || !strings.HasPrefix(calls[0], "allow method:"+procedure+":session:") ||
		!strings.HasPrefix(calls[1], "allow per_session:") || calls[2] != "allow per_ip:198.51.100.1" {
		t.Fatalf("first call asked %q; want method, per_session, per_ip", calls)
	}
	session := strings.TrimPrefix(calls[1], "allow per_session:")
	if strings.Contains(strings.Join(calls, " "), "s1") || len(session) != 43 {
		t.Errorf("session bucket named %q: want a 43-character digest, never the cookie", session)
	}

	// The method bucket is empty: refused at once, nothing else asked.
	rec := serve(h, call{method: http.MethodPost, path: procedure, session: "s1"})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("second call: status %d, Retry-After %q; want 429, 2 (1.5s rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
	if calls := shared.takeCalls(); len(calls) != 1 {
		t.Errorf("second call asked %q; want the method bucket only", calls)
	}

	// The address's bucket (burst 2) is empty after this one...
	serve(h, call{path: "/x", session: "s1"})
	shared.takeCalls()
	// ...so the next call takes a session token, is refused by the
	// address, and gives the session token back.
	if rec := serve(h, call{path: "/x", session: "s1"}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("call over the address's limit: status %d, want 429", rec.Code)
	}
	calls = shared.takeCalls()
	want := []string{"allow per_session:" + session, "allow per_ip:198.51.100.1", "refund per_session:" + session}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("refused call asked %q, want %q", calls, want)
	}

	// Login routes: login, then per_ip, by address.
	serve(h, call{path: "/auth/login", peer: "198.51.100.7:1"})
	if calls := shared.takeCalls(); strings.Join(calls, "|") != "allow login:198.51.100.7|allow per_ip:198.51.100.7" {
		t.Errorf("login asked %q", calls)
	}
	// Health checks ask nothing.
	serve(h, call{path: "/readyz"})
	if calls := shared.takeCalls(); len(calls) != 0 {
		t.Errorf("/readyz asked %q", calls)
	}
}

// TestSharedOutage checks the fallback: while the shared store fails,
// requests are limited by the Limiter's own buckets without waiting on the
// store, one warning is logged for the whole outage, one request a second
// tries the store again, and the first answer brings it back.
func TestSharedOutage(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
	logged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	clock := newFakeClock()
	shared := newFakeShared()
	limit := ratelimit.Limit{Rate: 0.001, Burst: 3}
	h := ratelimit.New(ratelimit.Config{PerSession: limit}, testCookie, nil,
		ratelimit.WithShared(shared), ratelimit.WithClock(clock.Now), ratelimit.WithLogger(logger)).Middleware(okHandler())
	s1 := call{path: "/x", session: "s1"}

	serve(h, s1) // shared: 2 left there
	shared.setFail(errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	shared.takeCalls()
	// The local bucket is full: 3 allowed, then refused, and only the
	// first request asked the store.
	for i := range 6 {
		if allowed := serve(h, s1).Code == http.StatusNoContent; allowed != (i < 3) {
			t.Fatalf("outage, request %d: allowed %v, want %v", i, allowed, i < 3)
		}
	}
	if calls := shared.takeCalls(); len(calls) != 1 {
		t.Errorf("outage: the store was asked %d times, want once", len(calls))
	}
	if n := strings.Count(logged(), "level=WARN"); n != 1 || !strings.Contains(logged(), "connection refused") {
		t.Errorf("%d warnings, want 1 with the error:\n%s", n, logged())
	}

	// A second later, concurrent requests: one of them tries the store.
	clock.Advance(time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { serve(h, s1) })
	}
	wg.Wait()
	if calls := shared.takeCalls(); len(calls) != 1 {
		t.Errorf("a second into the outage: the store was asked %d times by 20 requests, want once", len(calls))
	}
	if n := strings.Count(logged(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings after a failed retry, want still 1:\n%s", n, logged())
	}

	// The store is back: the next retry finds it, and the shared bucket
	// (2 tokens left) decides again.
	shared.setFail(nil)
	serve(h, s1) // within the second: local, refused
	if calls := shared.takeCalls(); len(calls) != 0 {
		t.Errorf("the store was asked %q before the retry interval", calls)
	}
	clock.Advance(time.Second)
	for i := range 4 {
		if allowed := serve(h, s1).Code == http.StatusNoContent; allowed != (i < 2) {
			t.Fatalf("back, request %d: allowed %v, want %v", i, allowed, i < 2)
		}
	}
	if calls := shared.takeCalls(); len(calls) != 4 {
		t.Errorf("back: the store was asked %d times by 4 requests, want 4", len(calls))
	}
	if !strings.Contains(logged(), "level=INFO") || strings.Count(logged(), "\n") != 2 {
		t.Errorf("want one warning and one notice that the store is back:\n%s", logged())
	}

	// A second outage is a second warning.
	shared.setFail(errors.New("i/o timeout"))
	serve(h, s1)
	serve(h, s1)
	if n := strings.Count(logged(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings after a second outage, want 2:\n%s", n, logged())
	}
}

// TestSharedCallerGone checks that a request abandoned by its caller while
// the store is slow is not taken for an outage.
func TestSharedCallerGone(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	shared := newFakeShared()
	shared.release = make(chan struct{}) // Allow blocks until the caller goes away
	h := ratelimit.New(ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 1}}, testCookie, nil,
		ratelimit.WithShared(shared), ratelimit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))).Middleware(okHandler())
	ctx, cancel := context.WithCancel(context.Background())
	r := call{path: "/x"}.request().WithContext(ctx)
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), r)
	close(shared.release)
	shared.takeCalls()
	serve(h, call{path: "/x"})
	if calls := shared.takeCalls(); len(calls) != 1 {
		t.Errorf("after an abandoned request the store was asked %q; want it still used", calls)
	}
	if logs.Len() != 0 {
		t.Errorf("an abandoned request logged:\n%s", logs.String())
	}
}
