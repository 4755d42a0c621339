// Package sessiontest holds the suites every session.Store and
// session.Leaser implementation must pass, a fake clock for tests of code
// that keeps sessions, and an in-process lease table for tests of several
// managers sharing a store.
package sessiontest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

// Epoch is where a new Clock starts: whole seconds, so that stores that keep
// times at second or millisecond precision round-trip them exactly.
var Epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// Clock is a fake clock that moves only when told. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run runs the store suite. newStore must return a new, empty store that
// reads the time from now (for expiry) and nothing else; it is called once
// per subtest, and subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) session.Store) {
	t.Helper()
	setup := func(t *testing.T) (session.Store, *Clock) {
		t.Helper()
		clock := NewClock(Epoch)
		return newStore(t, clock.Now), clock
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s session.Store, clock *Clock)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"PutCopiesSealed", testPutCopiesSealed},
		{"PutReplaces", testPutReplaces},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"Touch", testTouch},
		{"UpdateSealed", testUpdateSealed},
		{"Find", testFind},
		{"FindNeedsSubjectOrSID", testFindNeedsSubjectOrSID},
		{"TombstoneLeavesFind", testTombstoneLeavesFind},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, clock := setup(t)
			tt.run(t, s, clock)
		})
	}
}

// live returns a live record of subject and sid, idle-expiring in 30
// minutes.
func live(clock *Clock, subject, sid string) session.Record {
	now := clock.Now()
	return session.Record{
		Subject:        subject,
		SID:            sid,
		Created:        now.Add(-time.Hour),
		LastSeen:       now.Add(-time.Minute),
		AbsoluteExpiry: now.Add(11 * time.Hour),
		Expires:        now.Add(30 * time.Minute),
		Sealed:         []byte("sealed/" + subject + "/" + sid),
	}
}

// tombstone returns a record saying a session ended for reason; it keeps
// subject and sid to check that Find skips it anyway.
func tombstone(clock *Clock, subject, sid string, reason session.Reason) session.Record {
	rec := live(clock, subject, sid)
	rec.Ended = reason
	rec.Sealed = nil
	return rec
}

// diff describes how got differs from want, or returns "".
func diff(got, want session.Record) string {
	var d []string
	str := func(field, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", field, g, w))
		}
	}
	tm := func(field string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	str("Subject", got.Subject, want.Subject)
	str("SID", got.SID, want.SID)
	tm("Created", got.Created, want.Created)
	tm("LastSeen", got.LastSeen, want.LastSeen)
	tm("AbsoluteExpiry", got.AbsoluteExpiry, want.AbsoluteExpiry)
	tm("Expires", got.Expires, want.Expires)
	if got.Ended != want.Ended {
		d = append(d, fmt.Sprintf("Ended = %v, want %v", got.Ended, want.Ended))
	}
	if !bytes.Equal(got.Sealed, want.Sealed) {
		d = append(d, fmt.Sprintf("Sealed = %q, want %q", got.Sealed, want.Sealed))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func mustPut(t *testing.T, s session.Store, key string, rec session.Record) {
	t.Helper()
	if err := s.Put(t.Context(), key, rec); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// wantRecord fails unless the store holds want under key.
func wantRecord(t *testing.T, s session.Store, key string, want session.Record) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if d := diff(got, want); d != "" {
		t.Errorf("Get(%q): %s", key, d)
	}
}

// wantMissing fails unless Get of key gives ErrNotFound.
func wantMissing(t *testing.T, s session.Store, key string) {
	t.Helper()
	if rec, err := s.Get(t.Context(), key); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get(%q) = %+v, %v; want ErrNotFound", key, rec, err)
	}
}

// wantFind fails unless Find(subject, sid) gives exactly want, in any order.
func wantFind(t *testing.T, s session.Store, subject, sid string, want ...string) {
	t.Helper()
	got, err := s.Find(t.Context(), subject, sid)
	if err != nil {
		t.Fatalf("Find(%q, %q): %v", subject, sid, err)
	}
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("Find(%q, %q) = %q, want %q", subject, sid, got, want)
	}
}

func testGetMissing(t *testing.T, s session.Store, clock *Clock) {
	wantMissing(t, s, "missing")
	mustPut(t, s, "present", live(clock, "alice", "sid-1"))
	wantMissing(t, s, "missing")
	wantMissing(t, s, "")
}

func testRoundTrip(t *testing.T, s session.Store, clock *Clock) {
	noSID := live(clock, "bob", "")
	binary := live(clock, "carol", "sid-3")
	binary.Sealed = []byte{0, 1, 2, 0xff, 0xfe, 0, '\n', '"'}
	subSecond := live(clock, "dave", "sid-4")
	subSecond.LastSeen = subSecond.LastSeen.Add(-250 * time.Millisecond)
	cases := map[string]session.Record{
		"live":             live(clock, "alice", "sid-1"),
		"without sid":      noSID,
		"binary sealed":    binary,
		"tombstone":        tombstone(clock, "", "", session.ReasonSignedOut),
		"tombstone fields": tombstone(clock, "erin", "sid-5", session.ReasonRefreshFailed),
		"milliseconds":     subSecond,
	}
	for name, rec := range cases {
		key := "key/" + name
		mustPut(t, s, key, rec)
		t.Run(name, func(t *testing.T) {
			wantRecord(t, s, key, rec)
		})
	}
}

func testPutCopiesSealed(t *testing.T, s session.Store, clock *Clock) {
	rec := live(clock, "alice", "sid-1")
	want := rec
	want.Sealed = bytes.Clone(rec.Sealed)
	mustPut(t, s, "k", rec)
	for i := range rec.Sealed {
		rec.Sealed[i] = 'X'
	}
	wantRecord(t, s, "k", want)
}

func testPutReplaces(t *testing.T, s session.Store, clock *Clock) {
	mustPut(t, s, "k", live(clock, "alice", "sid-1"))
	next := live(clock, "bob", "sid-2")
	next.LastSeen = clock.Now()
	next.Sealed = []byte("other")
	mustPut(t, s, "k", next)
	wantRecord(t, s, "k", next)
	wantFind(t, s, "alice", "")
	wantFind(t, s, "", "sid-1")
	wantFind(t, s, "bob", "sid-2", "k")
}

func testDelete(t *testing.T, s session.Store, clock *Clock) {
	mustPut(t, s, "k", live(clock, "alice", "sid-1"))
	mustPut(t, s, "other", live(clock, "alice", "sid-2"))
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, s, "k")
	wantFind(t, s, "alice", "", "other")
	wantFind(t, s, "", "sid-1")
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Errorf("Delete of a deleted key: %v", err)
	}
	if err := s.Delete(t.Context(), "never"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	wantRecord(t, s, "other", live(clock, "alice", "sid-2"))
}

func testExpiry(t *testing.T, s session.Store, clock *Clock) {
	short := live(clock, "alice", "sid-1")
	short.Expires = clock.Now().Add(time.Minute)
	long := live(clock, "alice", "sid-2")
	long.Expires = clock.Now().Add(time.Hour)
	mustPut(t, s, "short", short)
	mustPut(t, s, "long", long)

	clock.Advance(time.Minute - time.Second)
	wantRecord(t, s, "short", short)
	wantFind(t, s, "alice", "", "short", "long")

	clock.Advance(2 * time.Second)
	wantMissing(t, s, "short")
	wantMissing(t, s, "short") // also after a first miss, whatever it did
	wantRecord(t, s, "long", long)
	wantFind(t, s, "alice", "", "long")
	wantFind(t, s, "", "sid-1")
}

func testTouch(t *testing.T, s session.Store, clock *Clock) {
	lastSeen := clock.Now().Add(time.Second)
	expires := clock.Now().Add(2 * time.Hour)
	touched := live(clock, "alice", "sid-1")
	touched.LastSeen, touched.Expires = lastSeen, expires
	ended := tombstone(clock, "", "", session.ReasonSignedOut)
	cases := []struct {
		name string
		put  *session.Record
		want *session.Record // nil: missing
	}{
		{"live", ptr(live(clock, "alice", "sid-1")), &touched},
		{"missing", nil, nil},
		{"ended", &ended, &ended},
	}
	for _, c := range cases {
		key := "touch/" + c.name
		if c.put != nil {
			mustPut(t, s, key, *c.put)
		}
		t.Run(c.name, func(t *testing.T) {
			if err := s.Touch(t.Context(), key, lastSeen, expires); err != nil {
				t.Fatalf("Touch: %v", err)
			}
			if c.want == nil {
				wantMissing(t, s, key)
				return
			}
			wantRecord(t, s, key, *c.want)
		})
	}

	// A record past Expires is absent: touching it must not bring it back.
	expiring := live(clock, "bob", "sid-2")
	expiring.Expires = clock.Now().Add(time.Minute)
	mustPut(t, s, "touch/expired", expiring)
	clock.Advance(2 * time.Minute)
	if err := s.Touch(t.Context(), "touch/expired", clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Touch of an expired record: %v", err)
	}
	wantMissing(t, s, "touch/expired")
	wantFind(t, s, "bob", "")

	// Touch extends the life of the record past its former Expires.
	clock.Advance(time.Hour)
	wantRecord(t, s, "touch/live", touched)
	wantFind(t, s, "", "sid-1", "touch/live")
}

func ptr[T any](v T) *T { return &v }

func testUpdateSealed(t *testing.T, s session.Store, clock *Clock) {
	rec := live(clock, "alice", "sid-1")
	mustPut(t, s, "live", rec)
	sealed := []byte("new sealed box")
	if err := s.UpdateSealed(t.Context(), "live", sealed); err != nil {
		t.Fatalf("UpdateSealed: %v", err)
	}
	sealed[0] = 'X' // the store keeps its own copy
	want := rec
	want.Sealed = []byte("new sealed box")
	wantRecord(t, s, "live", want)
	wantFind(t, s, "alice", "sid-1", "live")

	ended := tombstone(clock, "", "", session.ReasonSignedOut)
	mustPut(t, s, "ended", ended)
	expiring := live(clock, "bob", "sid-2")
	expiring.Expires = clock.Now().Add(time.Minute)
	mustPut(t, s, "expired", expiring)
	clock.Advance(2 * time.Minute)

	for _, key := range []string{"missing", "ended", "expired"} {
		t.Run(key, func(t *testing.T) {
			if err := s.UpdateSealed(t.Context(), key, []byte("resurrected")); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("UpdateSealed(%q) = %v, want ErrNotFound", key, err)
			}
		})
	}
	wantMissing(t, s, "missing")
	wantRecord(t, s, "ended", ended)
	wantMissing(t, s, "expired")
	wantFind(t, s, "bob", "")
}

func testFind(t *testing.T, s session.Store, clock *Clock) {
	expiring := live(clock, "alice", "sid-1")
	expiring.Expires = clock.Now().Add(time.Minute)
	records := map[string]session.Record{
		"alice-1":         live(clock, "alice", "sid-1"),
		"alice-2":         live(clock, "alice", "sid-2"),
		"alice-nosid":     live(clock, "alice", ""),
		"bob-1":           live(clock, "bob", "sid-1"), // another subject with the same sid
		"bob-3":           live(clock, "bob", "sid-3"),
		"alice-tombstone": tombstone(clock, "alice", "sid-1", session.ReasonSignedOut),
		"alice-expired":   expiring,
	}
	for key, rec := range records {
		mustPut(t, s, key, rec)
	}
	clock.Advance(2 * time.Minute)
	cases := []struct {
		name, subject, sid string
		want               []string
	}{
		{"by subject", "alice", "", []string{"alice-1", "alice-2", "alice-nosid"}},
		{"by other subject", "bob", "", []string{"bob-1", "bob-3"}},
		{"by sid", "", "sid-1", []string{"alice-1", "bob-1"}},
		{"by sid of one", "", "sid-3", []string{"bob-3"}},
		{"by both", "alice", "sid-1", []string{"alice-1"}},
		{"by both, other subject", "bob", "sid-1", []string{"bob-1"}},
		{"sid of another subject", "bob", "sid-2", nil},
		{"unknown subject", "carol", "", nil},
		{"unknown sid", "", "sid-9", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFind(t, s, c.subject, c.sid, c.want...)
		})
	}
}

func testFindNeedsSubjectOrSID(t *testing.T, s session.Store, clock *Clock) {
	mustPut(t, s, "k", live(clock, "", ""))
	if keys, err := s.Find(t.Context(), "", ""); err == nil {
		t.Errorf("Find(\"\", \"\") = %q, nil; want an error", keys)
	}
}

func testTombstoneLeavesFind(t *testing.T, s session.Store, clock *Clock) {
	mustPut(t, s, "k", live(clock, "alice", "sid-1"))
	mustPut(t, s, "other", live(clock, "alice", "sid-2"))
	wantFind(t, s, "alice", "", "k", "other")
	cases := []struct {
		name string
		rec  session.Record
	}{
		// What the manager writes: no subject, no sid.
		{"bare", tombstone(clock, "", "", session.ReasonSignedOut)},
		// Even one that keeps them is not a live session.
		{"with fields", tombstone(clock, "alice", "sid-1", session.ReasonExpired)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustPut(t, s, "k", live(clock, "alice", "sid-1"))
			mustPut(t, s, "k", c.rec)
			wantFind(t, s, "alice", "", "other")
			wantFind(t, s, "", "sid-1")
			wantFind(t, s, "alice", "sid-1")
			wantRecord(t, s, "k", c.rec)
		})
	}
}

// testConcurrent hammers the store from many goroutines, each owning some
// keys and sharing one hot key, then checks that every owned key holds what
// its owner wrote last and that Find agrees with the records.
func testConcurrent(t *testing.T, s session.Store, clock *Clock) {
	const (
		workers = 16
		keysPer = 4
		rounds  = 40
	)
	ctx := t.Context()
	base := clock.Now()
	subjectOf := func(w int) string { return fmt.Sprintf("user-%d", w%4) }
	keyOf := func(w, i int) string { return fmt.Sprintf("w%d/k%d", w, i) }
	sealedOf := func(w, i, r int) []byte { return fmt.Appendf(nil, "w%d/k%d/r%d", w, i, r) }
	record := func(w, i int) session.Record {
		return session.Record{
			Subject:        subjectOf(w),
			SID:            keyOf(w, i) + "/sid",
			Created:        base,
			LastSeen:       base,
			AbsoluteExpiry: base.Add(12 * time.Hour),
			Expires:        base.Add(10 * time.Hour),
			Sealed:         []byte("initial"),
		}
	}
	mustPut(t, s, "hot", session.Record{Subject: "hot", SID: "hot-sid", Created: base, LastSeen: base, AbsoluteExpiry: base.Add(12 * time.Hour), Expires: base.Add(10 * time.Hour), Sealed: []byte("hot")})

	errs := make(chan error, workers*keysPer*rounds*8)
	fail := func(format string, args ...any) { errs <- fmt.Errorf(format, args...) }
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		// The clock moves while the workers run, about as fast as real
		// time: by little, however slow the store (a network store takes
		// a second or more for the rounds, where a spinning clock would
		// move by hours).
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				clock.Advance(time.Millisecond)
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for i := range keysPer {
					key := keyOf(w, i)
					if r == 0 {
						if err := s.Put(ctx, key, record(w, i)); err != nil {
							fail("Put(%s): %v", key, err)
						}
					}
					if _, err := s.Get(ctx, key); err != nil {
						fail("Get(%s): %v", key, err)
					}
					if err := s.Touch(ctx, key, base.Add(time.Duration(r)*time.Second), base.Add(11*time.Hour)); err != nil {
						fail("Touch(%s): %v", key, err)
					}
					if err := s.UpdateSealed(ctx, key, sealedOf(w, i, r)); err != nil {
						fail("UpdateSealed(%s): %v", key, err)
					}
					if _, err := s.Find(ctx, subjectOf(w), ""); err != nil {
						fail("Find: %v", err)
					}
					// Everyone shares the hot key.
					if _, err := s.Get(ctx, "hot"); err != nil {
						fail("Get(hot): %v", err)
					}
					if err := s.Touch(ctx, "hot", base.Add(time.Duration(r)*time.Second), base.Add(11*time.Hour)); err != nil {
						fail("Touch(hot): %v", err)
					}
					if err := s.UpdateSealed(ctx, "hot", sealedOf(w, i, r)); err != nil {
						fail("UpdateSealed(hot): %v", err)
					}
					if _, err := s.Find(ctx, "", "hot-sid"); err != nil {
						fail("Find(hot): %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	ticker.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	wantBySubject := make(map[string][]string)
	for w := range workers {
		for i := range keysPer {
			key := keyOf(w, i)
			want := record(w, i)
			want.LastSeen = base.Add((rounds - 1) * time.Second)
			want.Expires = base.Add(11 * time.Hour)
			want.Sealed = sealedOf(w, i, rounds-1)
			wantRecord(t, s, key, want)
			wantBySubject[want.Subject] = append(wantBySubject[want.Subject], key)
		}
	}
	for subject, keys := range wantBySubject {
		wantFind(t, s, subject, "", keys...)
	}
	wantFind(t, s, "", "hot-sid", "hot")
	hot, err := s.Get(ctx, "hot")
	if err != nil {
		t.Fatalf("Get(hot): %v", err)
	}
	if d := hot.LastSeen.Sub(base); hot.Subject != "hot" || hot.SID != "hot-sid" || !bytes.HasPrefix(hot.Sealed, []byte("w")) ||
		d < 0 || d >= rounds*time.Second || d%time.Second != 0 {
		t.Errorf("hot record mangled: %+v", hot)
	}
}
