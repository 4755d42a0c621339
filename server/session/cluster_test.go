package session_test

// Tests of several managers sharing one store, as replicas of the gateway
// share Redis: the memory store with an in-process lease table, and a
// provider that rotates refresh tokens and refuses a spent one for good.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
)

// rotatingProvider rotates the refresh token on every refresh and refuses
// a spent one (reuse detection): presenting one refresh token twice ends
// the session. It also exchanges and revokes tokens.
type rotatingProvider struct {
	now func() time.Time
	// delay is how long each refresh takes, in real time.
	delay time.Duration
	// before, when set, runs as each refresh starts.
	before func()
	// entered receives a value as each refresh starts.
	entered chan struct{}

	mu         sync.Mutex
	live       map[string]bool // refresh tokens that work
	issued     int
	refreshes  int
	rejected   int
	refreshAt  []time.Time
	exchanges  []exchangeCall
	revoked    []string
	revokeFail error
}

func newRotatingProvider(now func() time.Time) *rotatingProvider {
	return &rotatingProvider{now: now, live: make(map[string]bool), entered: make(chan struct{}, 1000)}
}

// login issues the tokens of a new login, the access token valid for d.
func (p *rotatingProvider) login(d time.Duration) session.Tokens {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := fmt.Sprintf("rt-login-%d", p.issued)
	p.issued++
	p.live[rt] = true
	return session.Tokens{AccessToken: "at-0", RefreshToken: rt, IDToken: "it-0", AccessExpiry: p.now().Add(d)}
}

func (p *rotatingProvider) Refresh(ctx context.Context, rt string) (session.Tokens, error) {
	p.mu.Lock()
	p.refreshes++
	p.refreshAt = append(p.refreshAt, time.Now())
	ok := p.live[rt]
	delete(p.live, rt)
	if !ok {
		p.rejected++
		p.mu.Unlock()
		return session.Tokens{}, fmt.Errorf("%w: refresh token %q reused", session.ErrRefreshRejected, rt)
	}
	n := p.refreshes
	next := fmt.Sprintf("rt-%d", n)
	p.live[next] = true
	p.mu.Unlock()
	p.entered <- struct{}{}
	if p.before != nil {
		p.before()
	}
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return session.Tokens{}, ctx.Err()
		}
	}
	return session.Tokens{AccessToken: fmt.Sprintf("at-%d", n), RefreshToken: next, AccessExpiry: p.now().Add(10 * time.Minute)}, nil
}

func (p *rotatingProvider) Exchange(_ context.Context, subject, audience string) (session.Tokens, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges = append(p.exchanges, exchangeCall{subject, audience})
	return session.Tokens{
		AccessToken:  fmt.Sprintf("ex-%d-%s-for-%s", len(p.exchanges), audience, subject),
		AccessExpiry: p.now().Add(10 * time.Minute),
	}, nil
}

func (p *rotatingProvider) Revoke(_ context.Context, rt string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = append(p.revoked, rt)
	delete(p.live, rt)
	return p.revokeFail
}

// counts returns how many refreshes the provider saw and how many it
// refused.
func (p *rotatingProvider) counts() (refreshes, rejected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes, p.rejected
}

func (p *rotatingProvider) exchangeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.exchanges)
}

func (p *rotatingProvider) revokedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.revoked...)
}

// cluster is several managers (replicas) on one store, lease table, key
// ring, clock and provider.
type cluster struct {
	clock *sessiontest.Clock
	store *session.MemoryStore
	table *sessiontest.LeaseTable
	ring  *keyring.Ring
	idp   *rotatingProvider
	m     []*session.Manager
}

func newCluster(t testing.TB, replicas int, leaseTTL time.Duration) *cluster {
	t.Helper()
	clock := sessiontest.NewClock(sessiontest.Epoch)
	store, err := session.NewMemoryStore(10000, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{clock: clock, store: store, table: sessiontest.NewLeaseTable(), ring: ringOf(t, 1), idp: newRotatingProvider(clock.Now)}
	for range replicas {
		c.m = append(c.m, c.manager(sessiontest.LeasedStore{Store: store, LeaseTable: c.table}, session.WithLeaseTTL(leaseTTL)))
	}
	return c
}

// manager returns another manager on the cluster's clock, ring and
// provider, keeping sessions in store.
func (c *cluster) manager(store session.Store, opts ...session.Option) *session.Manager {
	opts = append([]session.Option{session.WithClock(c.clock.Now), session.WithTimeouts(idle, absolute)}, opts...)
	return session.NewManager(store, c.ring, c.idp, opts...)
}

// login creates a session of user on the first replica whose access token
// is valid for d, and returns its cookie header and store key.
func (c *cluster) login(t testing.TB, user session.User, d time.Duration) (http.Header, string) {
	t.Helper()
	cookie, s, err := c.m[0].Create(t.Context(), user, "", c.idp.login(d))
	if err != nil {
		t.Fatal(err)
	}
	return cookieHeader(cookie.Name, cookie.Value), s.Key()
}

// storedTokens returns the tokens in the record under key.
func (c *cluster) storedTokens(t testing.TB, key string) session.Tokens {
	t.Helper()
	rec, err := c.store.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	b, err := c.ring.Open(rec.Sealed, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Tokens session.Tokens `json:"t"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p.Tokens
}

// storm makes perReplica concurrent calls on every replica, each loading
// the session named by h and asking for its access token, and returns the
// tokens they got; every failure fails the test.
func (c *cluster) storm(t testing.TB, h http.Header, perReplica int) []string {
	t.Helper()
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range c.m {
		for j := range perReplica {
			wg.Go(func() {
				<-start
				s, err := m.FromHeader(t.Context(), h)
				if err != nil {
					t.Errorf("replica %d call %d: FromHeader: %v", i, j, err)
					return
				}
				tok, err := m.AccessToken(t.Context(), s)
				if err != nil {
					t.Errorf("replica %d call %d: AccessToken: %v", i, j, err)
					return
				}
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
			})
		}
	}
	close(start)
	await(t, waitGroupDone(&wg), "the calls")
	return tokens
}

// wantAll fails unless every token is want and there are n of them.
func wantAll(t testing.TB, tokens []string, n int, want string) {
	t.Helper()
	if len(tokens) != n {
		t.Errorf("%d calls succeeded, want %d", len(tokens), n)
	}
	for _, tok := range tokens {
		if tok != want {
			t.Errorf("a call got %q, want %q", tok, want)
			return
		}
	}
}

// waitFor waits (in real time) until cond holds, or fails after a while.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLeaseTable(t *testing.T) {
	t.Parallel()
	sessiontest.RunLeaser(t, func(*testing.T) session.Leaser { return sessiontest.NewLeaseTable() })
}

// TestClusterRefreshesOnce: concurrent calls on three replicas for a
// session whose access token has expired make one refresh at a provider
// that refuses a spent refresh token, and every call succeeds. The refresh
// waits until another replica has been refused the lease, so the replicas
// really overlap.
func TestClusterRefreshesOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, session.RefreshLeaseTTL)
	h, key := c.login(t, alice, -time.Second)
	c.idp.before = func() {
		deadline := time.Now().Add(5 * time.Second)
		for c.table.Refused() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	const perReplica = 50
	tokens := c.storm(t, h, perReplica)
	wantAll(t, tokens, 3*perReplica, "at-1")
	if refreshes, rejected := c.idp.counts(); refreshes != 1 || rejected != 0 {
		t.Errorf("%d refreshes (%d refused), want 1 (0)", refreshes, rejected)
	}
	if c.table.Refused() == 0 {
		t.Error("no replica was ever refused the lease: the replicas did not overlap")
	}
	if got := c.storedTokens(t, key); got.AccessToken != "at-1" || got.RefreshToken != "rt-1" {
		t.Errorf("stored tokens %q, %q; want at-1, rt-1", got.AccessToken, got.RefreshToken)
	}
	if c.table.Held(session.LeaseName(key)) {
		t.Error("the lease is still held after the refresh")
	}
	// The next storm uses the stored tokens.
	wantAll(t, c.storm(t, h, 5), 15, "at-1")
	if refreshes, _ := c.idp.counts(); refreshes != 1 {
		t.Errorf("%d refreshes after a second storm, want 1", refreshes)
	}
}

// TestClusterDeadLeaseHolder: a replica that died holding a session's lease
// delays the others until the lease expires, no longer, and the session
// survives.
func TestClusterDeadLeaseHolder(t *testing.T) {
	t.Parallel()
	const ttl = 400 * time.Millisecond
	c := newCluster(t, 2, ttl)
	h, key := c.login(t, alice, -time.Second)
	taken := time.Now()
	if _, err := c.table.Lease(t.Context(), session.LeaseName(key), ttl); err != nil {
		t.Fatal(err)
	} // and never renewed nor released: its holder is gone
	const perReplica = 20
	tokens := c.storm(t, h, perReplica)
	elapsed := time.Since(taken)
	wantAll(t, tokens, 2*perReplica, "at-1")
	if refreshes, rejected := c.idp.counts(); refreshes != 1 || rejected != 0 {
		t.Fatalf("%d refreshes (%d refused), want 1 (0)", refreshes, rejected)
	}
	c.idp.mu.Lock()
	at := c.idp.refreshAt[0]
	c.idp.mu.Unlock()
	if at.Before(taken.Add(ttl)) {
		t.Errorf("refreshed %v after the dead holder took the lease, before it expired (%v)", at.Sub(taken), ttl)
	}
	if elapsed > ttl+2*time.Second {
		t.Errorf("the calls took %v, want at most the lease TTL %v (and a little)", elapsed, ttl)
	}
	for i, m := range c.m {
		if s, err := m.FromHeader(t.Context(), h); err != nil || s.Tokens().AccessToken != "at-1" {
			t.Errorf("replica %d after the storm: %v, %v", i, s, err)
		}
	}
}

// TestClusterLeaseHolderNeverReleases: a replica that stored new tokens but
// never released its lease does not delay the others until it expires:
// they read the record while they wait.
func TestClusterLeaseHolderNeverReleases(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, session.RefreshLeaseTTL)
	h, key := c.login(t, alice, -time.Second)
	if _, err := c.table.Lease(t.Context(), session.LeaseName(key), session.RefreshLeaseTTL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan tokenResult, 1)
	go func() {
		s, err := c.m[0].FromHeader(t.Context(), h)
		if err != nil {
			done <- tokenResult{err: err}
			return
		}
		tok, err := c.m[0].AccessToken(t.Context(), s)
		done <- tokenResult{tok, err}
	}()
	waitFor(t, "the replica to wait for the lease", func() bool { return c.table.Refused() > 0 })
	// The holder refreshes (through a view of the store without leases,
	// as the holder itself would) and stores the tokens.
	holder := c.manager(c.store)
	s, err := holder.FromHeader(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := holder.AccessToken(t.Context(), s); err != nil || tok != "at-1" {
		t.Fatalf("holder's refresh = %q, %v", tok, err)
	}
	r := await(t, done, "the waiting replica")
	if r.err != nil || r.token != "at-1" {
		t.Errorf("waiting replica got %q, %v; want at-1", r.token, r.err)
	}
	if elapsed := time.Since(start); elapsed > session.RefreshLeaseTTL/2 {
		t.Errorf("the waiting replica took %v: it waited for the lease to expire", elapsed)
	}
	if refreshes, rejected := c.idp.counts(); refreshes != 1 || rejected != 0 {
		t.Errorf("%d refreshes (%d refused), want 1 (0)", refreshes, rejected)
	}
}

// TestClusterSlowProvider: a provider slower than the lease TTL does not
// let another replica take the lease: the holder renews it.
func TestClusterSlowProvider(t *testing.T) {
	t.Parallel()
	// A TTL long enough that a loaded test machine renews in time: the
	// lease is renewed every TTL/3 and lost after a whole TTL.
	const ttl = time.Second
	c := newCluster(t, 2, ttl)
	c.idp.delay = 5 * ttl / 2
	h, _ := c.login(t, alice, -time.Second)
	first := make(chan tokenResult, 1)
	go func() {
		s, err := c.m[0].FromHeader(t.Context(), h)
		if err != nil {
			first <- tokenResult{err: err}
			return
		}
		tok, err := c.m[0].AccessToken(t.Context(), s)
		first <- tokenResult{tok, err}
	}()
	await(t, c.idp.entered, "the first refresh")
	others := make(chan tokenResult, 10)
	for range cap(others) {
		go func() {
			s, err := c.m[1].FromHeader(t.Context(), h)
			if err != nil {
				others <- tokenResult{err: err}
				return
			}
			tok, err := c.m[1].AccessToken(t.Context(), s)
			others <- tokenResult{tok, err}
		}()
	}
	if r := await(t, first, "the slow refresh"); r.err != nil || r.token != "at-1" {
		t.Errorf("holder got %q, %v; want at-1", r.token, r.err)
	}
	for range cap(others) {
		if r := await(t, others, "the other replica"); r.err != nil || r.token != "at-1" {
			t.Errorf("other replica got %q, %v; want at-1", r.token, r.err)
		}
	}
	if refreshes, rejected := c.idp.counts(); refreshes != 1 || rejected != 0 {
		t.Errorf("%d refreshes (%d refused), want 1 (0)", refreshes, rejected)
	}
	if n := c.table.Renewed(); n < 2 {
		t.Errorf("the lease was renewed %d times during a refresh of 2.5 TTLs", n)
	}
}

// TestClusterCachesStayTrue: what one replica keeps (opened records,
// exchanged tokens) never outlives a refresh or an end of the session on
// another.
func TestClusterCachesStayTrue(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, session.RefreshLeaseTTL)
	a, b := c.m[0], c.m[1]
	h, _ := c.login(t, alice, time.Hour)
	load := func(m *session.Manager) *session.Session {
		t.Helper()
		s, err := m.FromHeader(t.Context(), h)
		if err != nil {
			t.Fatalf("FromHeader: %v", err)
		}
		return s
	}

	// B exchanges the session's token and keeps the result.
	sb := load(b)
	ex0, err := b.ExchangedToken(t.Context(), sb, aud)
	if err != nil || ex0 != "ex-1-"+aud+"-for-at-0" {
		t.Fatalf("ExchangedToken = %q, %v", ex0, err)
	}
	if tok, _ := b.ExchangedToken(t.Context(), load(b), aud); tok != ex0 || c.idp.exchangeCount() != 1 {
		t.Fatalf("kept exchange not used: %q, %d exchanges", tok, c.idp.exchangeCount())
	}

	// A refreshes (a backend refused at-0).
	if tok, err := a.RenewAccessToken(t.Context(), load(a), "at-0"); err != nil || tok != "at-1" {
		t.Fatalf("RenewAccessToken on A = %q, %v", tok, err)
	}
	// B's next request holds the new token, and does not use what it
	// exchanged from the replaced one.
	sb = load(b)
	if got := sb.Tokens().AccessToken; got != "at-1" {
		t.Errorf("B loaded access token %q after A refreshed, want at-1", got)
	}
	ex1, err := b.ExchangedToken(t.Context(), sb, aud)
	if err != nil || ex1 != "ex-2-"+aud+"-for-at-1" {
		t.Errorf("ExchangedToken on B after A refreshed = %q, %v; want one exchanged from at-1", ex1, err)
	}
	if refreshes, _ := c.idp.counts(); refreshes != 1 {
		t.Errorf("%d refreshes, want 1", refreshes)
	}

	// A signs the user out: B's next request is refused, though B has the
	// record opened and an exchange kept.
	if err := a.End(t.Context(), load(a), session.ReasonSignedOut); err != nil {
		t.Fatal(err)
	}
	_, err = b.FromHeader(t.Context(), h)
	wantRefused(t, err, session.ReasonSignedOut)
	// A Session B loaded before the logout gets no new exchange.
	if _, err := b.RenewExchangedToken(t.Context(), sb, aud, ex1); err == nil {
		t.Error("B exchanged a token for a session A ended")
	} else {
		wantRefused(t, err, session.ReasonSignedOut)
	}

	// Back-channel logout on A ends the user's sessions for B too.
	h2, _ := c.login(t, alice, time.Hour)
	h3, _ := c.login(t, alice, time.Hour)
	for _, hh := range []http.Header{h2, h3} {
		if _, err := b.FromHeader(t.Context(), hh); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.EndMatching(t.Context(), alice.Subject, ""); err != nil || n != 2 {
		t.Fatalf("EndMatching = %d, %v; want 2", n, err)
	}
	for _, hh := range []http.Header{h2, h3} {
		_, err := b.FromHeader(t.Context(), hh)
		wantRefused(t, err, session.ReasonSignedOut)
	}
}

// TestClusterRefreshRefusedEndsForAll: when the holder's refresh is refused
// for good, the replicas waiting for its lease learn that the session
// ended; none presents the refresh token again.
func TestClusterRefreshRefusedEndsForAll(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, session.RefreshLeaseTTL)
	h, _ := c.login(t, alice, -time.Second)
	// The provider forgets the refresh token (revoked elsewhere).
	c.idp.mu.Lock()
	clear(c.idp.live)
	c.idp.mu.Unlock()
	var wg sync.WaitGroup
	for i, m := range c.m {
		for range 10 {
			wg.Go(func() {
				s, err := m.FromHeader(t.Context(), h)
				if err != nil {
					wantRefused(t, err, session.ReasonRefreshFailed)
					return
				}
				_, err = m.AccessToken(t.Context(), s)
				if se, ok := errors.AsType[*session.Error](err); !ok || se.Reason != session.ReasonRefreshFailed {
					t.Errorf("replica %d: AccessToken = %v, want REFRESH_FAILED", i, err)
				}
			})
		}
	}
	await(t, waitGroupDone(&wg), "the calls")
	if refreshes, _ := c.idp.counts(); refreshes != 1 {
		t.Errorf("%d refreshes, want 1", refreshes)
	}
}
