package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/server/session"
)

// joinCtx reports the first time its Done is asked for: in AccessToken,
// that is when the caller has joined a refresh flight and waits for it.
type joinCtx struct {
	context.Context
	once   sync.Once
	joined func()
}

func (c *joinCtx) Done() <-chan struct{} {
	c.once.Do(c.joined)
	return c.Context.Done()
}

// await fails the test if ch does not deliver soon. The timeout is only a
// guard against hanging: nothing here depends on how long things take.
func await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitGroupDone returns a channel closed when wg is done.
func waitGroupDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

type tokenResult struct {
	token string
	err   error
}

func TestAccessTokenFreshness(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    []session.Option
		token   string
		expiry  time.Duration // from now; 0 with zeroExpiry
		zero    bool
		refresh bool
	}{
		{"fresh", nil, "at", time.Hour, false, false},
		{"just outside the skew", nil, "at", time.Minute + time.Second, false, false},
		{"at the skew", nil, "at", time.Minute, false, true},
		{"within the skew", nil, "at", 30 * time.Second, false, true},
		{"expired", nil, "at", -time.Minute, false, true},
		{"no expiry", nil, "at", 0, true, false},
		{"no access token", nil, "", time.Hour, false, true},
		{"no skew, about to expire", []session.Option{session.WithRefreshSkew(0)}, "at", time.Second, false, false},
		{"no skew, expired", []session.Option{session.WithRefreshSkew(0)}, "at", 0, false, true},
		{"long skew", []session.Option{session.WithRefreshSkew(10 * time.Minute)}, "at", 5 * time.Minute, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c.opts...)
			tokens := e.tokens(c.expiry)
			tokens.AccessToken = c.token
			if c.zero {
				tokens.AccessExpiry = time.Time{}
			}
			_, h, _ := e.create(t, alice, "", tokens)
			s := e.load(t, h)
			got, err := e.m.AccessToken(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			want := c.token
			if c.refresh {
				want = "at-refreshed-1"
			}
			if got != want || e.ref.Calls() != map[bool]int{false: 0, true: 1}[c.refresh] {
				t.Errorf("AccessToken = %q after %d refreshes; want %q, refresh %v", got, e.ref.Calls(), want, c.refresh)
			}
			// The session object and the store agree with the answer.
			if s.Tokens().AccessToken != want || e.load(t, h).Tokens().AccessToken != want {
				t.Errorf("session holds %q, store %q; want %q", s.Tokens().AccessToken, e.load(t, h).Tokens().AccessToken, want)
			}
		})
	}
}

func TestAccessTokenSingleFlight(t *testing.T) {
	t.Parallel()
	const n = 200
	e := newEnv(t)
	e.ref.gate = make(chan struct{})
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
	// Every caller has a session object of its own, loaded before the
	// refresh, as concurrent requests do.
	sessions := make([]*session.Session, n)
	for i := range sessions {
		sessions[i] = e.load(t, h)
	}
	var joined sync.WaitGroup
	joined.Add(n)
	results := make(chan tokenResult, n)
	for i := range n {
		go func() {
			ctx := &joinCtx{Context: t.Context(), joined: joined.Done}
			tok, err := e.m.AccessToken(ctx, sessions[i])
			results <- tokenResult{tok, err}
		}()
	}
	await(t, waitGroupDone(&joined), "all callers to wait for the refresh")
	await(t, e.ref.entered, "the refresh")
	close(e.ref.gate)
	for range n {
		r := await(t, results, "a result")
		if r.err != nil || r.token != "at-refreshed-1" {
			t.Errorf("AccessToken = %q, %v; want at-refreshed-1", r.token, r.err)
		}
	}
	if calls := e.ref.Calls(); calls != 1 {
		t.Errorf("%d refreshes for %d concurrent callers, want 1", calls, n)
	}
	if got := e.load(t, h).Tokens(); got.AccessToken != "at-refreshed-1" || got.RefreshToken != "rt-secret-original+" {
		t.Errorf("stored tokens %+v", got)
	}
}

func TestAccessTokenSessionsRefreshIndependently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ref.gate = make(chan struct{})
	_, h1, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
	tokens := e.tokens(-time.Minute)
	tokens.RefreshToken = "rt-bob"
	_, h2, _ := e.create(t, session.User{Subject: "bob"}, "sid-2", tokens)
	results := make(chan tokenResult, 2)
	for _, h := range []http.Header{h1, h2} {
		s := e.load(t, h)
		go func() {
			tok, err := e.m.AccessToken(t.Context(), s)
			results <- tokenResult{tok, err}
		}()
	}
	// Both refreshes are under way at once: one does not wait for the other.
	got := map[string]bool{await(t, e.ref.entered, "a refresh"): true, await(t, e.ref.entered, "another refresh"): true}
	if !got["rt-secret-original"] || !got["rt-bob"] {
		t.Errorf("refreshed with %v", got)
	}
	close(e.ref.gate)
	for range 2 {
		if r := await(t, results, "a result"); r.err != nil {
			t.Error(r.err)
		}
	}
}

func TestAccessTokenWaiterCancelled(t *testing.T) {
	t.Parallel()
	const n = 10
	cases := []struct {
		name   string
		victim int // 0 starts the flight
	}{
		{"the caller that started the refresh", 0},
		{"a caller that joined it", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.ref.gate = make(chan struct{})
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
			victimCtx, cancel := context.WithCancel(t.Context())
			defer cancel()
			results := make([]chan tokenResult, n)
			var joined sync.WaitGroup
			start := func(i int) {
				ctx := context.Context(t.Context())
				if i == c.victim {
					ctx = victimCtx
				}
				s := e.load(t, h)
				results[i] = make(chan tokenResult, 1)
				joined.Add(1)
				go func() {
					tok, err := e.m.AccessToken(&joinCtx{Context: ctx, joined: joined.Done}, s)
					results[i] <- tokenResult{tok, err}
				}()
			}
			start(0)
			await(t, e.ref.entered, "the refresh")
			for i := 1; i < n; i++ {
				start(i)
			}
			await(t, waitGroupDone(&joined), "all callers to wait for the refresh")

			cancel()
			// The victim gives up while the refresh is still held.
			r := await(t, results[c.victim], "the cancelled caller")
			if r.err == nil || connect.CodeOf(r.err) != connect.CodeCanceled || !errors.Is(r.err, context.Canceled) {
				t.Errorf("cancelled caller got %q, %v; want canceled", r.token, r.err)
			}
			close(e.ref.gate)
			for i := range n {
				if i == c.victim {
					continue
				}
				if r := await(t, results[i], "a result"); r.err != nil || r.token != "at-refreshed-1" {
					t.Errorf("caller %d got %q, %v", i, r.token, r.err)
				}
			}
			e.ref.mu.Lock()
			ctxErrs := e.ref.ctxErrs
			e.ref.mu.Unlock()
			if len(ctxErrs) != 1 || ctxErrs[0] != nil {
				t.Errorf("refresh context errors %v: the refresh was cancelled with its caller", ctxErrs)
			}
			if e.ref.Calls() != 1 {
				t.Errorf("%d refreshes", e.ref.Calls())
			}
			if got := e.load(t, h).Tokens().AccessToken; got != "at-refreshed-1" {
				t.Errorf("stored access token %q", got)
			}
		})
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		rotate      bool
		wantSecond  string // refresh token of the second refresh
		wantIDToken string // after the first refresh
	}{
		{"rotated", true, "rt-2", "it-2"},
		{"not rotated", false, "rt-secret-original", "it-secret-original"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.ref.respond = func(rt string) (session.Tokens, error) {
				tok := session.Tokens{AccessToken: "at-for-" + rt, AccessExpiry: e.clock.Now().Add(5 * time.Minute)}
				if c.rotate {
					tok.RefreshToken, tok.IDToken = "rt-2", "it-2"
				}
				return tok, nil
			}
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
			if tok, err := e.m.AccessToken(t.Context(), e.load(t, h)); err != nil || tok != "at-for-rt-secret-original" {
				t.Fatalf("first AccessToken = %q, %v", tok, err)
			}
			if got := e.load(t, h).Tokens(); got.RefreshToken != c.wantSecond || got.IDToken != c.wantIDToken {
				t.Errorf("stored refresh token %q, id token %q; want %q, %q", got.RefreshToken, got.IDToken, c.wantSecond, c.wantIDToken)
			}
			e.clock.Advance(5 * time.Minute)
			if tok, err := e.m.AccessToken(t.Context(), e.load(t, h)); err != nil || tok != "at-for-"+c.wantSecond {
				t.Fatalf("second AccessToken = %q, %v", tok, err)
			}
			if got := e.ref.Got(); len(got) != 2 || got[0] != "rt-secret-original" || got[1] != c.wantSecond {
				t.Errorf("refreshed with %q, want [rt-secret-original %s]", got, c.wantSecond)
			}
		})
	}
}

func TestRefreshFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		err        error
		wantCode   connect.Code
		wantReason session.Reason // of the error
		later      session.Reason // of later requests; 0: the session lives
	}{
		{"rejected", session.ErrRefreshRejected, connect.CodeUnauthenticated, session.ReasonRefreshFailed, session.ReasonRefreshFailed},
		{"rejected, wrapped", fmt.Errorf("oauth2: %w: invalid_grant", session.ErrRefreshRejected), connect.CodeUnauthenticated, session.ReasonRefreshFailed, session.ReasonRefreshFailed},
		{"outage", errors.New("dial tcp: connection refused"), connect.CodeUnavailable, 0, 0},
		{"timeout", context.DeadlineExceeded, connect.CodeUnavailable, 0, 0},
		{"provider 500", fmt.Errorf("login: refresh: %w", errors.New("oauth2: server error")), connect.CodeUnavailable, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			fail := true
			e.ref.respond = func(rt string) (session.Tokens, error) {
				if fail {
					return session.Tokens{}, c.err
				}
				return session.Tokens{AccessToken: "at-recovered", AccessExpiry: e.clock.Now().Add(time.Hour)}, nil
			}
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
			stale := e.load(t, h)
			tok, err := e.m.AccessToken(t.Context(), e.load(t, h))
			if tok != "" || browserCode(err) != c.wantCode || session.ReasonOf(err) != c.wantReason {
				t.Fatalf("AccessToken = %q, %v (reason %v); want %v, %v", tok, err, session.ReasonOf(err), c.wantCode, c.wantReason)
			}
			if c.later != 0 {
				e.wantEnded(t, h, c.later)
				// A caller still holding the session learns it too, without
				// another refresh.
				_, err := e.m.AccessToken(t.Context(), stale)
				wantRefused(t, err, c.later)
				if e.ref.Calls() != 1 {
					t.Errorf("%d refreshes, want 1", e.ref.Calls())
				}
				return
			}
			// The session survives an outage and refreshes once it is over.
			fail = false
			s := e.load(t, h)
			if tok, err := e.m.AccessToken(t.Context(), s); err != nil || tok != "at-recovered" {
				t.Errorf("AccessToken after the outage = %q, %v", tok, err)
			}
			if got := e.ref.Got(); len(got) != 2 || got[1] != "rt-secret-original" {
				t.Errorf("refreshed with %q", got)
			}
		})
	}
}

func TestRefreshRefusedWithoutProvider(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tokens func(e *env) session.Tokens
		active time.Duration // the session is used until then
		after  time.Duration // clock advance after loading the session
		reason session.Reason
	}{
		{"no refresh token", func(e *env) session.Tokens {
			tok := e.tokens(-time.Minute)
			tok.RefreshToken = ""
			return tok
		}, 0, 0, session.ReasonExpired},
		{"past the absolute expiry", func(e *env) session.Tokens { return e.tokens(absolute) }, absolute - time.Minute, time.Minute, session.ReasonExpired},
		{"idled out while held", func(e *env) session.Tokens { return e.tokens(idle) }, 0, idle + time.Second, session.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			end := e.clock.Now().Add(c.active)
			_, h, _ := e.create(t, alice, "sid-1", c.tokens(e))
			for step := idle / 2; e.clock.Now().Add(step).Before(end); {
				e.clock.Advance(step)
				e.load(t, h)
			}
			e.clock.Advance(end.Sub(e.clock.Now()))
			s := e.load(t, h)
			e.clock.Advance(c.after)
			tok, err := e.m.AccessToken(t.Context(), s)
			if tok != "" {
				t.Errorf("AccessToken = %q", tok)
			}
			wantRefused(t, err, c.reason)
			e.wantEnded(t, h, c.reason)
			if e.ref.Calls() != 0 {
				t.Errorf("%d refreshes, want none", e.ref.Calls())
			}
		})
	}
}

func TestEndDuringRefresh(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		end  func(t *testing.T, e *env, s *session.Session)
	}{
		{"End", func(t *testing.T, e *env, s *session.Session) {
			if err := e.m.End(t.Context(), s, session.ReasonSignedOut); err != nil {
				t.Fatal(err)
			}
		}},
		{"back-channel logout", func(t *testing.T, e *env, _ *session.Session) {
			if n, err := e.m.EndMatching(t.Context(), "", "sid-1"); n != 1 || err != nil {
				t.Fatalf("EndMatching = %d, %v", n, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.ref.gate = make(chan struct{})
			ck, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
			s := e.load(t, h)
			result := make(chan tokenResult, 1)
			go func() {
				tok, err := e.m.AccessToken(t.Context(), s)
				result <- tokenResult{tok, err}
			}()
			await(t, e.ref.entered, "the refresh")
			c.end(t, e, s)
			close(e.ref.gate)
			r := await(t, result, "the refresh's caller")
			if r.token != "" {
				t.Errorf("AccessToken = %q after the session ended", r.token)
			}
			wantRefused(t, r.err, session.ReasonSignedOut)
			e.wantEnded(t, h, session.ReasonSignedOut)
			rec, err := e.store.Get(t.Context(), session.StoreKey(ck.Value))
			if err != nil || rec.Ended != session.ReasonSignedOut || len(rec.Sealed) != 0 {
				t.Errorf("record after the refresh: %+v, %v", rec, err)
			}
		})
	}
}

func TestStaleSessionDoesNotRefreshAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
	first, second := e.load(t, h), e.load(t, h) // two requests in parallel
	if tok, err := e.m.AccessToken(t.Context(), first); err != nil || tok != "at-refreshed-1" {
		t.Fatalf("first AccessToken = %q, %v", tok, err)
	}
	// second still holds the old tokens; its flight finds the new ones in
	// the store.
	if second.Tokens().AccessToken != "at-secret-original" {
		t.Fatalf("second session already has %q", second.Tokens().AccessToken)
	}
	if tok, err := e.m.AccessToken(t.Context(), second); err != nil || tok != "at-refreshed-1" {
		t.Errorf("second AccessToken = %q, %v", tok, err)
	}
	if calls := e.ref.Calls(); calls != 1 {
		t.Errorf("%d refreshes, want 1", calls)
	}
	if second.Tokens().AccessToken != "at-refreshed-1" {
		t.Errorf("second session holds %q", second.Tokens().AccessToken)
	}
}
