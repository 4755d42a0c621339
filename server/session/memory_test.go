package session_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		s, err := session.NewMemoryStore(1000, now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func newMemoryStore(t *testing.T, capacity int) (*session.MemoryStore, *sessiontest.Clock) {
	t.Helper()
	clock := sessiontest.NewClock(sessiontest.Epoch)
	s, err := session.NewMemoryStore(capacity, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

func memRecord(clock *sessiontest.Clock, subject, sid string) session.Record {
	now := clock.Now()
	return session.Record{
		Subject: subject, SID: sid, Created: now, LastSeen: now,
		AbsoluteExpiry: now.Add(time.Hour), Expires: now.Add(30 * time.Minute),
		Sealed: []byte(subject),
	}
}

func TestMemoryStoreEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		use     func(t *testing.T, s *session.MemoryStore, clock *sessiontest.Clock) // after a, b, c are put
		evicted string                                                               // by putting d
	}{
		{"oldest", func(*testing.T, *session.MemoryStore, *sessiontest.Clock) {}, "a"},
		{"get refreshes", func(t *testing.T, s *session.MemoryStore, _ *sessiontest.Clock) {
			if _, err := s.Get(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
		}, "b"},
		{"get of two refreshes both", func(t *testing.T, s *session.MemoryStore, _ *sessiontest.Clock) {
			for _, k := range []string{"b", "a"} {
				if _, err := s.Get(t.Context(), k); err != nil {
					t.Fatal(err)
				}
			}
		}, "c"},
		{"put again refreshes", func(t *testing.T, s *session.MemoryStore, clock *sessiontest.Clock) {
			if err := s.Put(t.Context(), "a", memRecord(clock, "a", "sid-a")); err != nil {
				t.Fatal(err)
			}
		}, "b"},
		{"touch refreshes", func(t *testing.T, s *session.MemoryStore, clock *sessiontest.Clock) {
			if err := s.Touch(t.Context(), "a", clock.Now(), clock.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, clock := newMemoryStore(t, 3)
			for _, k := range []string{"a", "b", "c"} {
				if err := s.Put(t.Context(), k, memRecord(clock, k, "sid-"+k)); err != nil {
					t.Fatal(err)
				}
			}
			c.use(t, s, clock)
			if err := s.Put(t.Context(), "d", memRecord(clock, "d", "sid-d")); err != nil {
				t.Fatal(err)
			}
			if n := s.Len(); n != 3 {
				t.Errorf("Len = %d, want 3", n)
			}
			for _, k := range []string{"a", "b", "c", "d"} {
				_, err := s.Get(t.Context(), k)
				if k == c.evicted {
					if !errors.Is(err, session.ErrNotFound) {
						t.Errorf("Get(%q) = %v, want ErrNotFound (evicted)", k, err)
					}
				} else if err != nil {
					t.Errorf("Get(%q) = %v, want the record", k, err)
				}
			}
		})
	}
}

func TestMemoryStoreEvictionUnindexes(t *testing.T) {
	t.Parallel()
	s, clock := newMemoryStore(t, 2)
	ctx := t.Context()
	put := func(key, subject, sid string) {
		t.Helper()
		if err := s.Put(ctx, key, memRecord(clock, subject, sid)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "alice", "sid-a")
	put("b", "alice", "sid-b")
	put("c", "bob", "sid-c") // evicts a
	if keys, err := s.Find(ctx, "alice", ""); err != nil || len(keys) != 1 || keys[0] != "b" {
		t.Errorf("Find(alice) = %q, %v; want [b]", keys, err)
	}
	if keys, err := s.Find(ctx, "", "sid-a"); err != nil || len(keys) != 0 {
		t.Errorf("Find(sid-a) = %q, %v; want none", keys, err)
	}
	// The index entries themselves are gone, not just filtered out.
	if subjects, sids := s.IndexSizes(); subjects != 2 || sids != 2 {
		t.Errorf("index sizes = %d subjects, %d sids; want 2, 2", subjects, sids)
	}
	put("d", "dave", "sid-d") // evicts b: alice's last session
	if subjects, sids := s.IndexSizes(); subjects != 2 || sids != 2 {
		t.Errorf("index sizes = %d subjects, %d sids; want 2, 2", subjects, sids)
	}
	// Replacing, tombstoning, deleting and expiring also leave no entries.
	if err := s.Put(ctx, "c", session.Record{Ended: session.ReasonSignedOut, Expires: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if subjects, sids := s.IndexSizes(); subjects != 0 || sids != 0 {
		t.Errorf("after tombstone and delete: index sizes = %d, %d; want 0, 0", subjects, sids)
	}
	put("e", "erin", "sid-e")
	clock.Advance(time.Hour)
	if _, err := s.Get(ctx, "e"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of an expired record: %v", err)
	}
	if subjects, sids := s.IndexSizes(); subjects != 0 || sids != 0 {
		t.Errorf("after expiry: index sizes = %d, %d; want 0, 0", subjects, sids)
	}
}

func TestNewMemoryStoreRefusesCapacity(t *testing.T) {
	t.Parallel()
	for _, capacity := range []int{0, -1, -1 << 31} {
		if s, err := session.NewMemoryStore(capacity, nil); err == nil {
			t.Errorf("NewMemoryStore(%d) = %v, nil; want an error", capacity, s)
		}
	}
}

func TestMemoryStoreDefaultClock(t *testing.T) {
	t.Parallel()
	s, err := session.NewMemoryStore(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct {
		name    string
		expires time.Time
		found   bool
	}{
		{"future", now.Add(time.Hour), true},
		{"past", now.Add(-time.Second), false},
	} {
		if err := s.Put(t.Context(), "k", session.Record{Expires: c.expires}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), "k"); (err == nil) != c.found {
			t.Errorf("%s: Get = %v, want found %v", c.name, err, c.found)
		}
	}
}

// TestMemoryStoreDropsExpiredRecords checks that records nobody reads
// again (the tombstones of signed-out sessions, sessions whose users never
// came back) leave the store as new ones come, rather than when it is
// full.
func TestMemoryStoreDropsExpiredRecords(t *testing.T) {
	t.Parallel()
	s, clock := newMemoryStore(t, 1000)
	ctx := t.Context()
	for i := range 20 {
		if err := s.Put(ctx, fmt.Sprintf("old-%02d", i), memRecord(clock, "alice", "")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "fresh", memRecord(clock, "bob", "")); err != nil {
		t.Fatal(err)
	}
	// Nothing has expired yet: nothing is dropped.
	if got := s.Len(); got != 21 {
		t.Fatalf("Len = %d before expiry, want 21", got)
	}
	clock.Advance(31 * time.Minute) // every record above has expired
	for i := range 5 {
		if err := s.Put(ctx, fmt.Sprintf("new-%d", i), memRecord(clock, "carol", "")); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Len(); got != 5 {
		t.Errorf("Len = %d after 5 new records, want 5: the 21 expired ones dropped", got)
	}
	// The sweep stops at the first record that has not expired.
	clock.Advance(time.Minute)
	if err := s.Put(ctx, "another", memRecord(clock, "dave", "")); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 6 {
		t.Errorf("Len = %d, want 6: no live record dropped", got)
	}
	if keys, err := s.Find(ctx, "alice", ""); err != nil || len(keys) != 0 {
		t.Errorf("Find(alice) = %v, %v; want nothing left in the index", keys, err)
	}
}
