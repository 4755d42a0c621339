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

// exchangeCall is one call of fakeExchanger.Exchange.
type exchangeCall struct{ subject, audience string }

// fakeExchanger is a fake refresher that also exchanges tokens.
type fakeExchanger struct {
	*fakeRefresher
	// respond gives the answer to the n-th exchange (from 1); nil: a
	// token valid for 10 minutes naming the call.
	respondX func(n int, call exchangeCall) (session.Tokens, error)
	// gate, when not nil, holds every exchange until it is closed.
	gate chan struct{}
	// entered receives every exchange as it starts.
	entered chan exchangeCall

	mu    sync.Mutex
	calls []exchangeCall
}

func (x *fakeExchanger) Exchange(ctx context.Context, subject, audience string) (session.Tokens, error) {
	call := exchangeCall{subject, audience}
	x.mu.Lock()
	x.calls = append(x.calls, call)
	n := len(x.calls)
	x.mu.Unlock()
	x.entered <- call
	if x.gate != nil {
		select {
		case <-x.gate:
		case <-ctx.Done():
			return session.Tokens{}, ctx.Err()
		}
	}
	if x.respondX != nil {
		return x.respondX(n, call)
	}
	return session.Tokens{AccessToken: exToken(n, call), AccessExpiry: x.now().Add(10 * time.Minute)}, nil
}

// exToken is the token the n-th exchange gives by default.
func exToken(n int, call exchangeCall) string {
	return fmt.Sprintf("ex-%d-%s-for-%s", n, call.audience, call.subject)
}

func (x *fakeExchanger) Exchanges() []exchangeCall {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]exchangeCall(nil), x.calls...)
}

// newExchangeEnv is newEnv with a refresher that can exchange tokens.
func newExchangeEnv(t testing.TB, opts ...session.Option) (*env, *fakeExchanger) {
	t.Helper()
	e := newEnv(t)
	x := &fakeExchanger{fakeRefresher: e.ref, entered: make(chan exchangeCall, 1000)}
	opts = append([]session.Option{session.WithClock(e.clock.Now), session.WithTimeouts(idle, absolute)}, opts...)
	e.m = session.NewManager(e.store, e.ring, x, opts...)
	return e, x
}

const aud = "acme-loyalty"

// original is the exchange of the original access token for aud.
var original = exchangeCall{"at-secret-original", aud}

func TestExchangedTokenCache(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opts      []session.Option
		zero      bool          // the exchanged token has no expiry
		advance   time.Duration // after the first exchange
		exchanges int           // after the second call
	}{
		{"fresh", nil, false, 0, 1},
		{"just outside the skew", nil, false, 9*time.Minute - time.Second, 1},
		{"at the skew", nil, false, 9 * time.Minute, 2},
		{"expired", nil, false, 11 * time.Minute, 2},
		{"no expiry", nil, true, 20 * time.Minute, 1},
		{"long skew", []session.Option{session.WithRefreshSkew(5 * time.Minute)}, false, 5 * time.Minute, 2},
		{"no skew", []session.Option{session.WithRefreshSkew(0)}, false, 10*time.Minute - time.Second, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t, c.opts...)
			if c.zero {
				x.respondX = func(n int, call exchangeCall) (session.Tokens, error) {
					return session.Tokens{AccessToken: exToken(n, call)}, nil
				}
			}
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			for range 3 {
				if tok, err := e.m.ExchangedToken(t.Context(), s, aud); err != nil || tok != exToken(1, original) {
					t.Fatalf("ExchangedToken = %q, %v; want %q", tok, err, exToken(1, original))
				}
			}
			if n := len(x.Exchanges()); n != 1 {
				t.Fatalf("%d exchanges for three calls, want 1", n)
			}
			e.clock.Advance(c.advance)
			tok, err := e.m.ExchangedToken(t.Context(), s, aud)
			if want := exToken(c.exchanges, original); err != nil || tok != want {
				t.Errorf("ExchangedToken after %v = %q, %v; want %q", c.advance, tok, err, want)
			}
			if n := len(x.Exchanges()); n != c.exchanges {
				t.Errorf("%d exchanges, want %d", n, c.exchanges)
			}
			// The session's own token was never refreshed for it.
			if e.ref.Calls() != 0 {
				t.Errorf("%d refreshes", e.ref.Calls())
			}
		})
	}
}

func TestExchangedTokenSingleFlight(t *testing.T) {
	t.Parallel()
	const n = 100
	e, x := newExchangeEnv(t)
	x.gate = make(chan struct{})
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	var joined sync.WaitGroup
	joined.Add(n)
	results := make(chan tokenResult, n)
	for range n {
		s := e.load(t, h)
		go func() {
			ctx := &joinCtx{Context: t.Context(), joined: joined.Done}
			tok, err := e.m.ExchangedToken(ctx, s, aud)
			results <- tokenResult{tok, err}
		}()
	}
	await(t, waitGroupDone(&joined), "all callers to wait for the exchange")
	await(t, x.entered, "the exchange")
	close(x.gate)
	for range n {
		if r := await(t, results, "a result"); r.err != nil || r.token != exToken(1, original) {
			t.Errorf("ExchangedToken = %q, %v; want %q", r.token, r.err, exToken(1, original))
		}
	}
	if got := x.Exchanges(); len(got) != 1 {
		t.Errorf("%d exchanges for %d concurrent callers, want 1", len(got), n)
	}
}

func TestExchangedTokensAreSeparate(t *testing.T) {
	t.Parallel()
	e, x := newExchangeEnv(t)
	x.gate = make(chan struct{})
	_, h1, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	bobTokens := e.tokens(time.Hour)
	bobTokens.AccessToken = "at-bob"
	_, h2, _ := e.create(t, session.User{Subject: "bob"}, "sid-2", bobTokens)
	// Two sessions of alice share nothing either.
	_, h3, _ := e.create(t, alice, "sid-3", e.tokens(time.Hour))
	type key struct {
		h        http.Header
		audience string
	}
	keys := []key{{h1, aud}, {h1, "acme-orders"}, {h2, aud}, {h3, aud}}
	results := make([]chan tokenResult, len(keys))
	for i, k := range keys {
		s := e.load(t, k.h)
		results[i] = make(chan tokenResult, 1)
		go func() {
			tok, err := e.m.ExchangedToken(t.Context(), s, k.audience)
			results[i] <- tokenResult{tok, err}
		}()
	}
	// All four exchanges are under way at once: none waits for another.
	for range keys {
		await(t, x.entered, "an exchange")
	}
	close(x.gate)
	tokens := map[string]bool{}
	for i, k := range keys {
		r := await(t, results[i], "a result")
		if r.err != nil || tokens[r.token] {
			t.Errorf("ExchangedToken(%s) = %q, %v", k.audience, r.token, r.err)
		}
		tokens[r.token] = true
		// Each cached token answers its own session and audience only.
		if tok, err := e.m.ExchangedToken(t.Context(), e.load(t, k.h), k.audience); err != nil || tok != r.token {
			t.Errorf("cached ExchangedToken(%s) = %q, %v; want %q", k.audience, tok, err, r.token)
		}
	}
	got := map[exchangeCall]int{}
	for _, c := range x.Exchanges() {
		got[c]++
	}
	want := map[exchangeCall]int{original: 2, {"at-secret-original", "acme-orders"}: 1, {"at-bob", aud}: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exchanges %v, want %v", got, want)
	}
}

func TestExchangeSubjectToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		expiry      time.Duration
		wantSubject string
		refreshes   int
	}{
		{"fresh access token", time.Hour, "at-secret-original", 0},
		{"expired access token is refreshed first", -time.Minute, "at-refreshed-1", 1},
		{"access token within the skew is refreshed first", 30 * time.Second, "at-refreshed-1", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(c.expiry))
			s := e.load(t, h)
			if _, err := e.m.ExchangedToken(t.Context(), s, aud); err != nil {
				t.Fatal(err)
			}
			if got := x.Exchanges(); len(got) != 1 || got[0] != (exchangeCall{c.wantSubject, aud}) {
				t.Errorf("exchanges %v, want subject %q", got, c.wantSubject)
			}
			if e.ref.Calls() != c.refreshes {
				t.Errorf("%d refreshes, want %d", e.ref.Calls(), c.refreshes)
			}
			if got := e.load(t, h).Tokens().AccessToken; got != c.wantSubject {
				t.Errorf("stored access token %q", got)
			}
		})
	}
}

func TestExchangeFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		err        error
		wantCode   connect.Code
		wantReason session.Reason // of the error and of later requests; 0: the session lives
	}{
		{"rejected", session.ErrRefreshRejected, connect.CodeUnauthenticated, session.ReasonTokenRejected},
		{"rejected, wrapped", fmt.Errorf("%w: token exchange: invalid_grant", session.ErrRefreshRejected), connect.CodeUnauthenticated, session.ReasonTokenRejected},
		{"outage", errors.New("dial tcp idp-internal-3: connection refused"), connect.CodeUnavailable, 0},
		{"timeout", context.DeadlineExceeded, connect.CodeUnavailable, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t)
			fail := true
			x.respondX = func(n int, call exchangeCall) (session.Tokens, error) {
				if fail {
					return session.Tokens{}, c.err
				}
				return session.Tokens{AccessToken: exToken(n, call), AccessExpiry: e.clock.Now().Add(time.Hour)}, nil
			}
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			tok, err := e.m.ExchangedToken(t.Context(), s, aud)
			if tok != "" || browserCode(err) != c.wantCode || session.ReasonOf(err) != c.wantReason {
				t.Fatalf("ExchangedToken = %q, %v (reason %v); want %v, %v", tok, err, session.ReasonOf(err), c.wantCode, c.wantReason)
			}
			fail = false
			if c.wantReason != 0 {
				e.wantEnded(t, h, c.wantReason)
				// A caller still holding the session learns it too, without
				// another exchange. The refusal was tried twice: once with
				// the session's token, once with a renewed one (the first
				// may have been replaced by a concurrent refresh).
				tok, err := e.m.ExchangedToken(t.Context(), s, aud)
				if tok != "" {
					t.Errorf("ExchangedToken of the ended session = %q", tok)
				}
				wantRefused(t, err, c.wantReason)
				if ex := x.Exchanges(); len(ex) != 2 || ex[0].subject == ex[1].subject {
					t.Errorf("exchanges %+v, want 2 with different subject tokens", ex)
				}
				return
			}
			// The session survives an outage and exchanges once it is over:
			// the failure was not cached.
			if tok, err := e.m.ExchangedToken(t.Context(), e.load(t, h), aud); err != nil || tok != exToken(2, original) {
				t.Errorf("ExchangedToken after the outage = %q, %v", tok, err)
			}
		})
	}
}

// enders end alice's session "sid-1" in each way a session ends.
var enders = []struct {
	name   string
	end    func(t *testing.T, e *env, s *session.Session)
	reason session.Reason
}{
	{"End", func(t *testing.T, e *env, s *session.Session) {
		if err := e.m.End(t.Context(), s, session.ReasonSignedOut); err != nil {
			t.Fatal(err)
		}
	}, session.ReasonSignedOut},
	{"EndMatching by subject", func(t *testing.T, e *env, _ *session.Session) {
		if n, err := e.m.EndMatching(t.Context(), alice.Subject, ""); n != 1 || err != nil {
			t.Fatalf("EndMatching = %d, %v", n, err)
		}
	}, session.ReasonSignedOut},
	{"EndMatching by sid", func(t *testing.T, e *env, _ *session.Session) {
		if n, err := e.m.EndMatching(t.Context(), "", "sid-1"); n != 1 || err != nil {
			t.Fatalf("EndMatching = %d, %v", n, err)
		}
	}, session.ReasonSignedOut},
	{"Reject", func(t *testing.T, e *env, s *session.Session) {
		wantRefused(t, e.m.Reject(t.Context(), s), session.ReasonTokenRejected)
	}, session.ReasonTokenRejected},
}

// TestEndDropsExchangedTokens checks that however a session ends, its
// exchanged tokens and its opened payload (its own tokens, decrypted) leave
// the manager's caches at once.
func TestEndDropsExchangedTokens(t *testing.T) {
	t.Parallel()
	for _, c := range enders {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			if tok, err := e.m.ExchangedToken(t.Context(), s, aud); err != nil || tok != exToken(1, original) {
				t.Fatalf("ExchangedToken = %q, %v", tok, err)
			}
			if !e.m.HoldsOpened(s.Key()) {
				t.Fatal("the loaded session's opened payload is not cached")
			}
			c.end(t, e, s)
			// Its tokens leave memory with it.
			if e.m.HoldsOpened(s.Key()) {
				t.Error("the ended session's opened payload, with its tokens, is still cached")
			}

			// The next request with the cookie learns why.
			e.wantEnded(t, h, c.reason)
			ut := e.m.UserTokens(e.m.Attach(t.Context(), h))
			_, err := ut.ExchangedToken(t.Context(), aud)
			wantRefused(t, err, c.reason)
			// So does a request that still holds the session: the kept
			// token is gone and no new one is exchanged.
			tok, err := e.m.ExchangedToken(t.Context(), s, aud)
			if tok != "" {
				t.Errorf("ended session got exchanged token %q", tok)
			}
			wantRefused(t, err, c.reason)
			if n := len(x.Exchanges()); n != 1 {
				t.Errorf("%d exchanges, want 1", n)
			}

			// A new session of the same user exchanges its own token.
			tokens := e.tokens(time.Hour)
			tokens.AccessToken = "at-second-login"
			_, h2, _ := e.create(t, alice, "sid-1", tokens)
			if tok, err := e.m.ExchangedToken(t.Context(), e.load(t, h2), aud); err != nil || tok != exToken(2, exchangeCall{"at-second-login", aud}) {
				t.Errorf("new session's ExchangedToken = %q, %v", tok, err)
			}
		})
	}
}

func TestEndDuringExchange(t *testing.T) {
	t.Parallel()
	for _, c := range enders {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t)
			x.gate = make(chan struct{})
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			result := make(chan tokenResult, 1)
			go func() {
				tok, err := e.m.ExchangedToken(t.Context(), s, aud)
				result <- tokenResult{tok, err}
			}()
			await(t, x.entered, "the exchange")
			c.end(t, e, s)
			close(x.gate)
			r := await(t, result, "the exchange's caller")
			if r.token != "" {
				t.Errorf("ExchangedToken = %q after the session ended", r.token)
			}
			wantRefused(t, r.err, c.reason)
			// The token that came back is not kept for the ended session.
			tok, err := e.m.ExchangedToken(t.Context(), s, aud)
			if tok != "" {
				t.Errorf("ended session got exchanged token %q", tok)
			}
			wantRefused(t, err, c.reason)
		})
	}
}

func TestRenewExchangedToken(t *testing.T) {
	t.Parallel()
	first, second := exToken(1, original), exToken(2, original)
	cases := []struct {
		name      string
		rejected  string
		want      string
		exchanges int
	}{
		{"the kept token is exchanged again", first, second, 2},
		{"an already replaced token is not", "ex-0-old", first, 1},
		{"an empty token is not", "", first, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, x := newExchangeEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			if tok, err := e.m.ExchangedToken(t.Context(), s, aud); err != nil || tok != first {
				t.Fatalf("ExchangedToken = %q, %v", tok, err)
			}
			if tok, err := e.m.RenewExchangedToken(t.Context(), s, aud, c.rejected); err != nil || tok != c.want {
				t.Errorf("RenewExchangedToken(%q) = %q, %v; want %q", c.rejected, tok, err, c.want)
			}
			// The answer is kept for the next calls.
			if tok, err := e.m.ExchangedToken(t.Context(), e.load(t, h), aud); err != nil || tok != c.want {
				t.Errorf("ExchangedToken after the renewal = %q, %v; want %q", tok, err, c.want)
			}
			if n := len(x.Exchanges()); n != c.exchanges {
				t.Errorf("%d exchanges, want %d", n, c.exchanges)
			}
			if e.ref.Calls() != 0 {
				t.Errorf("%d refreshes", e.ref.Calls())
			}
		})
	}
}

func TestRenewExchangedTokenSingleFlight(t *testing.T) {
	t.Parallel()
	const n = 50
	e, x := newExchangeEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	first := exToken(1, original)
	if tok, err := e.m.ExchangedToken(t.Context(), e.load(t, h), aud); err != nil || tok != first {
		t.Fatalf("ExchangedToken = %q, %v", tok, err)
	}
	x.gate = make(chan struct{})
	results := make(chan tokenResult, n)
	var joined sync.WaitGroup
	joined.Add(n)
	for range n {
		s := e.load(t, h)
		go func() {
			ctx := &joinCtx{Context: t.Context(), joined: joined.Done}
			tok, err := e.m.RenewExchangedToken(ctx, s, aud, first)
			results <- tokenResult{tok, err}
		}()
	}
	await(t, waitGroupDone(&joined), "all callers to wait for the exchange")
	await(t, x.entered, "the exchange")
	close(x.gate)
	for range n {
		if r := await(t, results, "a result"); r.err != nil || r.token != exToken(2, original) {
			t.Errorf("RenewExchangedToken = %q, %v", r.token, r.err)
		}
	}
	if got := len(x.Exchanges()); got != 2 {
		t.Errorf("%d exchanges, want 2 (the first and one renewal)", got)
	}
}

func TestExchangeWithoutExchanger(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		call func(ctx context.Context, e *env, s *session.Session) (string, error)
	}{
		{"ExchangedToken", func(ctx context.Context, e *env, s *session.Session) (string, error) {
			return e.m.ExchangedToken(ctx, s, aud)
		}},
		{"RenewExchangedToken", func(ctx context.Context, e *env, s *session.Session) (string, error) {
			return e.m.RenewExchangedToken(ctx, s, aud, "ex-old")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t) // its refresher cannot exchange
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
			tok, err := c.call(t.Context(), e, e.load(t, h))
			if tok != "" || connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("got %q, %v; want unimplemented", tok, err)
			}
			if e.ref.Calls() != 0 {
				t.Errorf("%d refreshes for an exchange that cannot happen", e.ref.Calls())
			}
		})
	}
}

func TestRenewAccessToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		rejected  func(t *testing.T, e *env, h http.Header) string
		wantToken string
		refreshes int
	}{
		{"the stored token is refreshed", func(*testing.T, *env, http.Header) string { return "at-secret-original" }, "at-refreshed-1", 1},
		{"a token no longer stored is not", func(*testing.T, *env, http.Header) string { return "at-from-long-ago" }, "at-secret-original", 0},
		{"another call already refreshed", func(t *testing.T, e *env, h http.Header) string {
			if tok, err := e.m.RenewAccessToken(t.Context(), e.load(t, h), "at-secret-original"); err != nil || tok != "at-refreshed-1" {
				t.Fatalf("first RenewAccessToken = %q, %v", tok, err)
			}
			return "at-secret-original"
		}, "at-refreshed-1", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h) // loaded before any renewal, like a concurrent request
			rejected := c.rejected(t, e, h)
			tok, err := e.m.RenewAccessToken(t.Context(), s, rejected)
			if err != nil || tok != c.wantToken {
				t.Errorf("RenewAccessToken(%q) = %q, %v; want %q", rejected, tok, err, c.wantToken)
			}
			if e.ref.Calls() != c.refreshes {
				t.Errorf("%d refreshes, want %d", e.ref.Calls(), c.refreshes)
			}
			if s.Tokens().AccessToken != c.wantToken || e.load(t, h).Tokens().AccessToken != c.wantToken {
				t.Errorf("session holds %q, store %q; want %q", s.Tokens().AccessToken, e.load(t, h).Tokens().AccessToken, c.wantToken)
			}
		})
	}
}

func TestRenewAccessTokenSingleFlight(t *testing.T) {
	t.Parallel()
	const n = 50
	e := newEnv(t)
	e.ref.gate = make(chan struct{})
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	var joined sync.WaitGroup
	joined.Add(n)
	results := make(chan tokenResult, n)
	for range n {
		s := e.load(t, h)
		go func() {
			ctx := &joinCtx{Context: t.Context(), joined: joined.Done}
			tok, err := e.m.RenewAccessToken(ctx, s, "at-secret-original")
			results <- tokenResult{tok, err}
		}()
	}
	await(t, waitGroupDone(&joined), "all callers to wait for the refresh")
	await(t, e.ref.entered, "the refresh")
	close(e.ref.gate)
	for range n {
		if r := await(t, results, "a result"); r.err != nil || r.token != "at-refreshed-1" {
			t.Errorf("RenewAccessToken = %q, %v", r.token, r.err)
		}
	}
	if calls := e.ref.Calls(); calls != 1 {
		t.Errorf("%d refreshes for %d renewals of one token, want 1", calls, n)
	}
}

// TestRenewAfterRenewal: a renewal that joins a refresh whose answer is the
// very token it rejects waits for that refresh, then refreshes once more;
// the two refreshes never overlap (fakeRefresher fails the test if they do).
func TestRenewAfterRenewal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ref.gate = make(chan struct{})
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
	first := make(chan tokenResult, 1)
	go func() {
		tok, err := e.m.AccessToken(t.Context(), e.load(t, h))
		first <- tokenResult{tok, err}
	}()
	await(t, e.ref.entered, "the first refresh")
	second := make(chan tokenResult, 1)
	joined := make(chan struct{})
	go func() {
		ctx := &joinCtx{Context: t.Context(), joined: func() { close(joined) }}
		tok, err := e.m.RenewAccessToken(ctx, e.load(t, h), "at-refreshed-1")
		second <- tokenResult{tok, err}
	}()
	await(t, joined, "the renewal to wait for the first refresh")
	// A renewal that started a refresh of its own instead of waiting would
	// show up here. The window only gives such a refresh the time to
	// appear; the correct outcome does not depend on it.
	select {
	case rt := <-e.ref.entered:
		t.Fatalf("a second refresh (%q) started while the first ran", rt)
	case <-time.After(50 * time.Millisecond):
	}
	close(e.ref.gate)
	if r := await(t, first, "the first refresh's caller"); r.err != nil || r.token != "at-refreshed-1" {
		t.Errorf("AccessToken = %q, %v", r.token, r.err)
	}
	if r := await(t, second, "the renewal"); r.err != nil || r.token != "at-refreshed-2" {
		t.Errorf("RenewAccessToken = %q, %v; want at-refreshed-2", r.token, r.err)
	}
	if got := e.ref.Got(); len(got) != 2 || got[1] != "rt-secret-original+" {
		t.Errorf("refreshed with %q", got)
	}
}

func TestRejectEndsSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		later func(t *testing.T, e *env, s *session.Session, h http.Header) error
	}{
		{"a new request", func(t *testing.T, e *env, _ *session.Session, h http.Header) error {
			_, err := e.m.FromHeader(t.Context(), h)
			return err
		}},
		{"a renewal by a request that holds the session", func(t *testing.T, e *env, s *session.Session, _ http.Header) error {
			_, err := e.m.RenewAccessToken(t.Context(), s, "at-secret-original")
			return err
		}},
		{"a backend call of a new request", func(t *testing.T, e *env, _ *session.Session, h http.Header) error {
			ut := e.m.UserTokens(e.m.Attach(t.Context(), h))
			_, err := ut.AccessToken(t.Context())
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, session.WithLoginURL("https://shop.example/auth/login"))
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			s := e.load(t, h)
			err := e.m.Reject(t.Context(), s)
			wantRefused(t, err, session.ReasonTokenRejected)
			if got := loginURLOf(err); got != "https://shop.example/auth/login" {
				t.Errorf("login url %q", got)
			}
			wantRefused(t, c.later(t, e, s, h), session.ReasonTokenRejected)
			if e.ref.Calls() != 0 {
				t.Errorf("%d refreshes after the session was rejected", e.ref.Calls())
			}
		})
	}
}
