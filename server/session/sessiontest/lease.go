package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

// LeaseTable is an in-process session.Leaser on the real clock, for tests
// of several session managers sharing one store as replicas share Redis.
// It counts what it did, and can be told to fail.
type LeaseTable struct {
	mu     sync.Mutex
	leases map[string]*tableLease // current holder by name
	fail   error                  // every call fails with it when set

	taken, refused, renewed atomic.Int64
}

type tableLease struct {
	t       *LeaseTable
	name    string
	ttl     time.Duration
	expires time.Time
}

var _ session.Leaser = (*LeaseTable)(nil)

// NewLeaseTable returns an empty lease table.
func NewLeaseTable() *LeaseTable {
	return &LeaseTable{leases: make(map[string]*tableLease)}
}

// Lease takes the lease name for ttl, or returns session.ErrLeaseHeld.
func (t *LeaseTable) Lease(_ context.Context, name string, ttl time.Duration) (session.Lease, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail != nil {
		return nil, t.fail
	}
	now := time.Now()
	if held, ok := t.leases[name]; ok && now.Before(held.expires) {
		t.refused.Add(1)
		return nil, session.ErrLeaseHeld
	}
	l := &tableLease{t: t, name: name, ttl: ttl, expires: now.Add(ttl)}
	t.leases[name] = l
	t.taken.Add(1)
	return l, nil
}

// Fail makes every later call fail with err; nil heals the table.
func (t *LeaseTable) Fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail = err
}

// Held reports whether a live lease named name exists.
func (t *LeaseTable) Held(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.leases[name]
	return ok && time.Now().Before(l.expires)
}

// Taken, Refused and Renewed count the leases taken, the attempts refused
// with session.ErrLeaseHeld and the successful renewals.
func (t *LeaseTable) Taken() int64   { return t.taken.Load() }
func (t *LeaseTable) Refused() int64 { return t.refused.Load() }
func (t *LeaseTable) Renewed() int64 { return t.renewed.Load() }

func (l *tableLease) Renew(context.Context) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if l.t.fail != nil {
		return l.t.fail
	}
	now := time.Now()
	if l.t.leases[l.name] != l || !now.Before(l.expires) {
		return fmt.Errorf("sessiontest: lease %q lost", l.name)
	}
	l.expires = now.Add(l.ttl)
	l.t.renewed.Add(1)
	return nil
}

func (l *tableLease) Release(context.Context) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if l.t.fail != nil {
		return l.t.fail
	}
	if l.t.leases[l.name] == l {
		delete(l.t.leases, l.name)
	}
	return nil
}

// LeasedStore is a Store that is also a Leaser: what several replicas
// share.
type LeasedStore struct {
	session.Store
	*LeaseTable
}

// RunLeaser runs the suite every session.Leaser must pass. newLeaser must
// return a leaser whose names are not shared with any other; subtests run
// in parallel, and on the real clock (leases of a few hundred
// milliseconds).
func RunLeaser(t *testing.T, newLeaser func(t *testing.T) session.Leaser) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, l session.Leaser)
	}{
		{"HeldUntilReleased", testLeaseHeldUntilReleased},
		{"Expires", testLeaseExpires},
		{"RenewKeeps", testLeaseRenewKeeps},
		{"OneOfMany", testLeaseOneOfMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newLeaser(t))
		})
	}
}

func mustLease(t *testing.T, l session.Leaser, name string, ttl time.Duration) session.Lease {
	t.Helper()
	lease, err := l.Lease(t.Context(), name, ttl)
	if err != nil {
		t.Fatalf("Lease(%q): %v", name, err)
	}
	return lease
}

func wantHeld(t *testing.T, l session.Leaser, name string) {
	t.Helper()
	if lease, err := l.Lease(t.Context(), name, time.Minute); !errors.Is(err, session.ErrLeaseHeld) {
		if lease != nil {
			_ = lease.Release(t.Context())
		}
		t.Fatalf("Lease(%q) while held = %v, want ErrLeaseHeld", name, err)
	}
}

func testLeaseHeldUntilReleased(t *testing.T, l session.Leaser) {
	a := mustLease(t, l, "a", time.Minute)
	wantHeld(t, l, "a")
	b := mustLease(t, l, "b", time.Minute) // names are independent
	if err := a.Release(t.Context()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := a.Release(t.Context()); err != nil {
		t.Errorf("second Release: %v", err)
	}
	again := mustLease(t, l, "a", time.Minute)
	wantHeld(t, l, "b")
	// The first holder's lease is gone: it can neither renew nor release
	// the new holder's.
	if err := a.Renew(t.Context()); err == nil {
		t.Error("Renew of a released lease succeeded")
	}
	if err := a.Release(t.Context()); err != nil {
		t.Errorf("Release of a released lease: %v", err)
	}
	wantHeld(t, l, "a")
	_ = again.Release(t.Context())
	_ = b.Release(t.Context())
}

func testLeaseExpires(t *testing.T, l session.Leaser) {
	const ttl = 200 * time.Millisecond
	dead := mustLease(t, l, "a", ttl) // a holder that dies: never renews
	wantHeld(t, l, "a")
	deadline := time.Now().Add(ttl + 2*time.Second)
	var next session.Lease
	for next == nil {
		lease, err := l.Lease(t.Context(), "a", time.Minute)
		switch {
		case err == nil:
			next = lease
		case !errors.Is(err, session.ErrLeaseHeld):
			t.Fatalf("Lease: %v", err)
		case time.Now().After(deadline):
			t.Fatalf("lease of %v still held after %v", ttl, ttl+2*time.Second)
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := dead.Renew(t.Context()); err == nil {
		t.Error("Renew of a lease taken by another holder succeeded")
	}
	if err := dead.Release(t.Context()); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
	wantHeld(t, l, "a") // the old holder did not release the new one's
	_ = next.Release(t.Context())
}

func testLeaseRenewKeeps(t *testing.T, l session.Leaser) {
	const ttl = 300 * time.Millisecond
	lease := mustLease(t, l, "a", ttl)
	for range 6 { // twice the TTL in all
		time.Sleep(ttl / 3)
		if err := lease.Renew(t.Context()); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		wantHeld(t, l, "a")
	}
	_ = lease.Release(t.Context())
	mustLease(t, l, "a", ttl)
}

func testLeaseOneOfMany(t *testing.T, l session.Leaser) {
	const n = 50
	var won atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := l.Lease(t.Context(), "a", time.Minute)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, session.ErrLeaseHeld):
				t.Errorf("Lease: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := won.Load(); got != 1 {
		t.Errorf("%d of %d concurrent Lease calls won, want 1", got, n)
	}
}
