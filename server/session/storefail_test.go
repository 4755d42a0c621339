package session_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
)

// errStoreDown is how the flaky store fails.
var errStoreDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// flakyStore is a Store whose operations fail on demand, by name.
type flakyStore struct {
	session.Store
	*sessiontest.LeaseTable

	mu      sync.Mutex
	failing map[string]error
}

func newFlakyStore(s session.Store, table *sessiontest.LeaseTable) *flakyStore {
	return &flakyStore{Store: s, LeaseTable: table, failing: make(map[string]error)}
}

// fail makes op fail with err from now on; nil heals it.
func (f *flakyStore) fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failing, op)
		return
	}
	f.failing[op] = err
}

// heal makes every operation work again.
func (f *flakyStore) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.failing)
	f.LeaseTable.Fail(nil)
}

func (f *flakyStore) err(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failing[op]
}

func (f *flakyStore) Get(ctx context.Context, key string) (session.Record, error) {
	if err := f.err("Get"); err != nil {
		return session.Record{}, err
	}
	return f.Store.Get(ctx, key)
}

func (f *flakyStore) Put(ctx context.Context, key string, rec session.Record) error {
	if err := f.err("Put"); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, rec)
}

func (f *flakyStore) Touch(ctx context.Context, key string, lastSeen, expires time.Time) error {
	if err := f.err("Touch"); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, lastSeen, expires)
}

func (f *flakyStore) UpdateSealed(ctx context.Context, key string, sealed []byte) error {
	if err := f.err("UpdateSealed"); err != nil {
		return err
	}
	return f.Store.UpdateSealed(ctx, key, sealed)
}

func (f *flakyStore) Delete(ctx context.Context, key string) error {
	if err := f.err("Delete"); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *flakyStore) Find(ctx context.Context, subject, sid string) ([]string, error) {
	if err := f.err("Find"); err != nil {
		return nil, err
	}
	return f.Store.Find(ctx, subject, sid)
}

// wantUnavailable fails unless err is what a caller gets while the store
// fails: CodeUnavailable with a google.rpc.RetryInfo detail, and no
// session verdict.
func wantUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want unavailable", what)
	}
	if se, ok := errors.AsType[*session.Error](err); ok {
		t.Fatalf("%s: session verdict %v, want unavailable: a store failure must not look like a missing session", what, se.Reason)
	}
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("%s: %v, want a connect error with code unavailable", what, err)
	}
	for _, d := range ce.Details() {
		v, err := connectproto.UnmarshalErrorDetail(d)
		if err != nil {
			t.Fatalf("%s: detail: %v", what, err)
		}
		if ri, ok := v.(*errdetails.RetryInfo); ok {
			if got := ri.GetRetryDelay().AsDuration(); got != session.StoreRetryDelay {
				t.Errorf("%s: retry delay %v, want %v", what, got, session.StoreRetryDelay)
			}
			return
		}
	}
	t.Errorf("%s: %v carries no google.rpc.RetryInfo detail", what, ce)
}

// flakyCluster is one manager on a flaky store over the cluster's store.
func flakyCluster(t *testing.T) (*cluster, *flakyStore, *session.Manager) {
	t.Helper()
	c := newCluster(t, 1, session.RefreshLeaseTTL)
	f := newFlakyStore(c.store, c.table)
	return c, f, c.manager(f)
}

// TestStoreFailuresKeepSessions fails each store operation a call needs in
// turn: the call answers unavailable with a retry hint (or, for a failed
// write the call can do without, succeeds), no record is deleted or
// overwritten, the provider never sees a refresh token twice, and the
// session works once the store does.
func TestStoreFailuresKeepSessions(t *testing.T) {
	t.Parallel()
	type step func(t *testing.T, c *cluster, f *flakyStore, m *session.Manager, h http.Header)
	load := func(t *testing.T, m *session.Manager, h http.Header) *session.Session {
		t.Helper()
		s, err := m.FromHeader(t.Context(), h)
		if err != nil {
			t.Fatalf("FromHeader: %v", err)
		}
		return s
	}
	cases := []struct {
		name    string
		expired bool // the session's access token needs a refresh
		fail    func(f *flakyStore)
		during  step
		// refreshes the provider saw when the store heals, and the access
		// token the session then has
		refreshes int
		after     string
	}{
		{
			name: "load",
			fail: func(f *flakyStore) { f.fail("Get", errStoreDown) },
			during: func(t *testing.T, _ *cluster, _ *flakyStore, m *session.Manager, h http.Header) {
				s, err := m.FromHeader(t.Context(), h)
				if s != nil {
					t.Error("FromHeader returned a session")
				}
				wantUnavailable(t, "FromHeader", err)
				// As the interceptor gives it to handlers.
				_, err = session.Require(m.Attach(t.Context(), h))
				wantUnavailable(t, "Require", err)
				_, err = m.UserTokens(m.Attach(t.Context(), h)).AccessToken(t.Context())
				wantUnavailable(t, "UserTokens.AccessToken", err)
			},
			after: "at-0",
		},
		{
			name:    "refresh reads the record",
			expired: true,
			fail:    func(f *flakyStore) {},
			during: func(t *testing.T, _ *cluster, f *flakyStore, m *session.Manager, h http.Header) {
				s := load(t, m, h)
				f.fail("Get", errStoreDown)
				_, err := m.AccessToken(t.Context(), s)
				wantUnavailable(t, "AccessToken", err)
			},
			refreshes: 1, after: "at-1",
		},
		{
			name:    "refresh takes the lease",
			expired: true,
			fail:    func(f *flakyStore) {},
			during: func(t *testing.T, _ *cluster, f *flakyStore, m *session.Manager, h http.Header) {
				s := load(t, m, h)
				f.LeaseTable.Fail(errStoreDown)
				_, err := m.AccessToken(t.Context(), s)
				wantUnavailable(t, "AccessToken", err)
			},
			refreshes: 1, after: "at-1",
		},
		{
			name:    "refresh stores the new tokens",
			expired: true,
			fail:    func(f *flakyStore) { f.fail("UpdateSealed", errStoreDown) },
			during: func(t *testing.T, c *cluster, f *flakyStore, m *session.Manager, h http.Header) {
				// The refreshed tokens work for this call, and the next
				// one on this replica stores them instead of presenting
				// the spent refresh token again.
				if tok, err := m.AccessToken(t.Context(), load(t, m, h)); err != nil || tok != "at-1" {
					t.Fatalf("AccessToken = %q, %v; want at-1", tok, err)
				}
				if tok, err := m.AccessToken(t.Context(), load(t, m, h)); err != nil || tok != "at-1" {
					t.Fatalf("second AccessToken = %q, %v; want at-1", tok, err)
				}
			},
			refreshes: 1, after: "at-1",
		},
		{
			name: "exchange checks the session",
			fail: func(f *flakyStore) {},
			during: func(t *testing.T, _ *cluster, f *flakyStore, m *session.Manager, h http.Header) {
				s := load(t, m, h)
				f.fail("Get", errStoreDown)
				_, err := m.ExchangedToken(t.Context(), s, aud)
				wantUnavailable(t, "ExchangedToken", err)
			},
			after: "at-0",
		},
		{
			name: "touch",
			fail: func(f *flakyStore) { f.fail("Touch", errStoreDown) },
			during: func(t *testing.T, c *cluster, _ *flakyStore, m *session.Manager, h http.Header) {
				c.clock.Advance(2 * time.Minute) // past idle/32: the load touches
				load(t, m, h)
			},
			after: "at-0",
		},
		{
			name: "sign out everywhere finds the sessions",
			fail: func(f *flakyStore) { f.fail("Find", errStoreDown) },
			during: func(t *testing.T, _ *cluster, _ *flakyStore, m *session.Manager, h http.Header) {
				_, err := m.EndUser(t.Context(), load(t, m, h))
				wantUnavailable(t, "EndUser", err)
			},
			after: "at-0",
		},
		{
			name: "sign out everywhere ends the sessions",
			fail: func(f *flakyStore) { f.fail("Put", errStoreDown) },
			during: func(t *testing.T, _ *cluster, _ *flakyStore, m *session.Manager, h http.Header) {
				_, err := m.EndUser(t.Context(), load(t, m, h))
				wantUnavailable(t, "EndUser", err)
			},
			after: "at-0",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, f, m := flakyCluster(t)
			validity := time.Hour
			if tc.expired {
				validity = -time.Second
			}
			h, key := c.login(t, alice, validity)
			before, err := c.store.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			tc.fail(f)
			tc.during(t, c, f, m, h)
			f.heal()
			if rec, err := c.store.Get(t.Context(), key); err != nil || rec.Ended != 0 {
				t.Fatalf("record after the failure: %+v, %v; want it live", rec, err)
			} else if refreshes, _ := c.idp.counts(); refreshes == 0 && !bytesEqual(rec.Sealed, before.Sealed) {
				t.Error("the record's tokens changed without a refresh")
			}
			// The session works again, on this replica and another.
			c.clock.Advance(time.Second)
			for i, m := range []*session.Manager{m, c.m[0]} {
				tok, err := m.AccessToken(t.Context(), load(t, m, h))
				if err != nil || tok != tc.after {
					t.Errorf("replica %d after the store healed: %q, %v; want %q", i, tok, err, tc.after)
				}
			}
			if refreshes, rejected := c.idp.counts(); refreshes != tc.refreshes || rejected != 0 {
				t.Errorf("%d refreshes (%d refused), want %d (0)", refreshes, rejected, tc.refreshes)
			}
			if got := c.storedTokens(t, key).AccessToken; got != tc.after {
				t.Errorf("stored access token %q, want %q", got, tc.after)
			}
		})
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestEndedDuringRefreshThenStoreFails: a refresh that finds its session
// ended by another replica, and then cannot read the store, answers
// unavailable; the session stays ended.
func TestEndedDuringRefreshThenStoreFails(t *testing.T) {
	t.Parallel()
	c, f, m := flakyCluster(t)
	h, _ := c.login(t, alice, -time.Second)
	s, err := m.FromHeader(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	c.idp.before = func() {
		if _, err := c.m[0].EndMatching(context.Background(), alice.Subject, ""); err != nil {
			t.Error(err)
		}
		f.fail("Get", errStoreDown)
	}
	_, err = m.AccessToken(t.Context(), s)
	wantUnavailable(t, "AccessToken", err)
	f.heal()
	_, err = m.FromHeader(t.Context(), h)
	wantRefused(t, err, session.ReasonSignedOut)
}

// Ping fails while "Ping" is failing, as a network store's would while it
// is unreachable.
func (f *flakyStore) Ping(context.Context) error { return f.err("Ping") }

// down makes every operation fail, as when Redis stops.
func (f *flakyStore) down() {
	for _, op := range []string{"Get", "Put", "Touch", "UpdateSealed", "Delete", "Find", "Ping"} {
		f.fail(op, errStoreDown)
	}
	f.LeaseTable.Fail(errStoreDown)
}
