package session_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/server/session"
)

func TestStoreNeverSeesIDOrSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokens := e.tokens(time.Hour)
	ck, _, s := e.create(t, alice, "sid-1", tokens)
	ctx := t.Context()

	keys, err := e.store.Find(ctx, alice.Subject, "")
	if err != nil || len(keys) != 1 {
		t.Fatalf("Find(subject) = %q, %v; want one key", keys, err)
	}
	key := keys[0]
	if key == ck.Value || strings.Contains(key, ck.Value) {
		t.Errorf("store key %q is the session id", key)
	}
	if key != session.StoreKey(ck.Value) || key != s.Key() {
		t.Errorf("store key %q, want storeKey(id) %q", key, session.StoreKey(ck.Value))
	}
	if bySID, err := e.store.Find(ctx, "", "sid-1"); err != nil || len(bySID) != 1 || bySID[0] != key {
		t.Errorf("Find(sid) = %q, %v", bySID, err)
	}
	if _, err := e.store.Get(ctx, ck.Value); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the store holds a record under the raw id: %v", err)
	}
	rec, err := e.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Subject != alice.Subject || rec.SID != "sid-1" || rec.Ended != 0 || !rec.Created.Equal(e.clock.Now()) {
		t.Errorf("record %+v", rec)
	}
	for _, secret := range []string{tokens.AccessToken, tokens.RefreshToken, tokens.IDToken, alice.Email, alice.Name, alice.Picture, s.LogoutID, ck.Value} {
		if bytes.Contains(rec.Sealed, []byte(secret)) {
			t.Errorf("sealed record contains %q", secret)
		}
	}
}

func TestFromHeaderLoadsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.clock.Now()
	tokens := e.tokens(time.Hour)
	_, h, made := e.create(t, alice, "sid-1", tokens)
	_, hBob, _ := e.create(t, session.User{Subject: "bob"}, "", e.tokens(time.Hour))
	e.clock.Advance(10 * time.Second) // within the touch throttle

	s := e.load(t, h)
	if s.User != alice || s.SID != "sid-1" || s.LogoutID != made.LogoutID || s.LogoutID == "" {
		t.Errorf("session user %+v sid %q logout id %q (created with %q)", s.User, s.SID, s.LogoutID, made.LogoutID)
	}
	if !s.Created.Equal(created) || !s.AbsoluteExpiry.Equal(created.Add(absolute)) || !s.IdleExpiry.Equal(created.Add(idle)) {
		t.Errorf("times created %v idle %v absolute %v", s.Created, s.IdleExpiry, s.AbsoluteExpiry)
	}
	if !made.Created.Equal(s.Created) || !made.IdleExpiry.Equal(s.IdleExpiry) || !made.AbsoluteExpiry.Equal(s.AbsoluteExpiry) {
		t.Errorf("Create's session %+v differs from the loaded one", made)
	}
	if got := s.Tokens(); got.AccessToken != tokens.AccessToken || got.RefreshToken != tokens.RefreshToken || got.IDToken != tokens.IDToken || !got.AccessExpiry.Equal(tokens.AccessExpiry) {
		t.Errorf("tokens %+v, want %+v", got, tokens)
	}
	if bob := e.load(t, hBob); bob.User.Subject != "bob" || bob.SID != "" || bob.Key() == s.Key() {
		t.Errorf("bob's session %+v", bob.User)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		advance time.Duration
		reason  session.Reason // 0: still alive
	}{
		{"just before", idle - time.Second, 0},
		{"at the limit", idle, session.ReasonExpired},
		{"just after", idle + time.Second, session.ReasonExpired},
		{"long after", 2*idle - time.Second, session.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			e.clock.Advance(c.advance)
			if c.reason == 0 {
				e.load(t, h)
				return
			}
			e.wantEnded(t, h, c.reason)
			// The next call learns the same from the tombstone.
			e.clock.Advance(time.Minute)
			e.wantEnded(t, h, c.reason)
			if keys, _ := e.store.Find(t.Context(), alice.Subject, ""); len(keys) != 0 {
				t.Errorf("an expired session is still found: %q", keys)
			}
		})
	}
}

func TestSlidingExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := e.clock.Now()
	ck, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	key := session.StoreKey(ck.Value)
	lastSeen := func() time.Time {
		t.Helper()
		rec, err := e.store.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		return rec.LastSeen
	}
	// Activity every 20 minutes keeps the session alive for hours, well
	// past the idle expiry it was created with.
	for i := 1; i <= 6; i++ {
		e.clock.Advance(20 * time.Minute)
		s := e.load(t, h)
		now := e.clock.Now()
		if !s.IdleExpiry.Equal(now.Add(idle)) {
			t.Errorf("after %v: idle expiry %v, want %v", now.Sub(start), s.IdleExpiry, now.Add(idle))
		}
		if got := lastSeen(); !got.Equal(now) {
			t.Errorf("after %v: LastSeen %v, want %v", now.Sub(start), got, now)
		}
	}
	e.clock.Advance(idle)
	e.wantEnded(t, h, session.ReasonExpired)
}

func TestTouchIsThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := e.clock.Now()
	ck, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	key := session.StoreKey(ck.Value)
	throttle := idle / 32
	steps := []struct {
		name         string
		advance      time.Duration
		wantLastSeen time.Duration // since start
	}{
		{"right away", 0, 0},
		{"within the throttle", throttle / 2, 0},
		{"just before the throttle", throttle/2 - time.Second, 0},
		{"at the throttle", time.Second, throttle},
		{"within again", throttle - time.Second, throttle},
		{"past again", 2 * time.Second, 2*throttle + time.Second},
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		s := e.load(t, h)
		rec, err := e.store.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		want := start.Add(st.wantLastSeen)
		if !rec.LastSeen.Equal(want) {
			t.Errorf("%s: LastSeen %v, want %v", st.name, rec.LastSeen.Sub(start), st.wantLastSeen)
		}
		if !s.IdleExpiry.Equal(want.Add(idle)) {
			t.Errorf("%s: IdleExpiry %v, want %v", st.name, s.IdleExpiry.Sub(start), st.wantLastSeen+idle)
		}
		if !rec.Expires.After(s.IdleExpiry) && !rec.Expires.Equal(s.IdleExpiry) {
			t.Errorf("%s: the store forgets the record (%v) before the session idles out (%v)", st.name, rec.Expires, s.IdleExpiry)
		}
	}
}

func TestAbsoluteTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := e.clock.Now()
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	for e.clock.Now().Before(start.Add(absolute - idle)) {
		e.clock.Advance(idle / 2)
		e.load(t, h)
	}
	// Near the end the idle expiry is capped by the absolute one.
	e.clock.Advance(idle / 2)
	if s := e.load(t, h); !s.IdleExpiry.Equal(start.Add(absolute)) {
		t.Errorf("idle expiry %v, want the absolute expiry %v", s.IdleExpiry.Sub(start), absolute)
	}
	for e.clock.Now().Before(start.Add(absolute)) {
		e.clock.Advance(time.Minute)
		if e.clock.Now().Before(start.Add(absolute)) {
			e.load(t, h)
		}
	}
	e.wantEnded(t, h, session.ReasonExpired)
	e.wantEnded(t, h, session.ReasonExpired)
}

func TestEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	_, other, _ := e.create(t, alice, "sid-2", e.tokens(time.Hour))
	s := e.load(t, h)
	if err := e.m.End(t.Context(), s, session.ReasonSignedOut); err != nil {
		t.Fatal(err)
	}
	e.wantEnded(t, h, session.ReasonSignedOut)
	e.clock.Advance(idle - time.Second)
	e.wantEnded(t, h, session.ReasonSignedOut) // the tombstone lives an idle period
	e.load(t, other)
	if keys, _ := e.store.Find(t.Context(), alice.Subject, ""); len(keys) != 1 || keys[0] != session.StoreKey(other.Get("Cookie")[len("__Host-custodian="):]) {
		t.Errorf("Find after End = %q", keys)
	}
}

func TestEndMatching(t *testing.T) {
	t.Parallel()
	type sess struct{ subject, sid string }
	all := map[string]sess{
		"alice-1": {"alice", "sid-a1"},
		"alice-2": {"alice", "sid-a2"},
		"bob-1":   {"bob", "sid-b1"},
		"bob-2":   {"bob", "sid-a1"}, // the same sid for another subject
		"carol":   {"carol", ""},
	}
	cases := []struct {
		name, subject, sid string
		ended              []string
		wantErr            bool
	}{
		{"by subject", "alice", "", []string{"alice-1", "alice-2"}, false},
		{"by subject without sid", "carol", "", []string{"carol"}, false},
		{"by sid", "", "sid-a2", []string{"alice-2"}, false},
		{"by shared sid", "", "sid-a1", []string{"alice-1", "bob-2"}, false},
		{"by both", "alice", "sid-a1", []string{"alice-1"}, false},
		{"by both, mismatched", "carol", "sid-a1", nil, false},
		{"unknown subject", "dave", "", nil, false},
		{"unknown sid", "", "sid-x", nil, false},
		{"nobody", "", "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			headers := make(map[string]http.Header)
			for name, s := range all {
				_, headers[name], _ = e.create(t, session.User{Subject: s.subject}, s.sid, e.tokens(time.Hour))
			}
			n, err := e.m.EndMatching(t.Context(), c.subject, c.sid)
			if (err != nil) != c.wantErr {
				t.Errorf("EndMatching error %v, want error %v", err, c.wantErr)
			}
			if n != len(c.ended) {
				t.Errorf("EndMatching ended %d, want %d", n, len(c.ended))
			}
			for name, h := range headers {
				ended := false
				for _, x := range c.ended {
					ended = ended || x == name
				}
				if ended {
					e.wantEnded(t, h, session.ReasonSignedOut)
				} else if _, err := e.m.FromHeader(t.Context(), h); err != nil {
					t.Errorf("%s's session did not survive: %v", name, err)
				}
			}
			// Ending again finds nothing more.
			if !c.wantErr {
				if n, err := e.m.EndMatching(t.Context(), c.subject, c.sid); n != 0 || err != nil {
					t.Errorf("second EndMatching = %d, %v", n, err)
				}
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ring   []byte // key bytes of the new ring
		reason session.Reason
	}{
		{"old key kept", []byte{2, 1}, 0},
		{"same ring", []byte{1}, 0},
		{"old key dropped", []byte{2}, session.ReasonExpired},
		{"unrelated keys", []byte{3, 4}, session.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t) // sessions sealed with key 1
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			rotated := e.manager(ringOf(t, c.ring...))
			s, err := rotated.FromHeader(t.Context(), h)
			if c.reason == 0 {
				if err != nil || s.User != alice || s.Tokens().AccessToken != "at-secret-original" {
					t.Fatalf("FromHeader with ring %v: %v", c.ring, err)
				}
				return
			}
			wantRefused(t, err, c.reason)
			_, err = rotated.FromHeader(t.Context(), h)
			wantRefused(t, err, c.reason)
		})
	}
}

func TestRefreshReseals(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // key 1
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(0))
	rotated := e.manager(ringOf(t, 2, 1))
	s, err := rotated.FromHeader(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.AccessToken(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	// Refreshed tokens are sealed with the new key: a ring without the old
	// one now opens the session.
	if _, err := e.manager(ringOf(t, 2)).FromHeader(t.Context(), h); err != nil {
		t.Errorf("after a refresh with the new key: %v", err)
	}
}

func TestDamagedRecords(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		damage func(t *testing.T, e *env, key, otherKey string)
	}{
		{"flipped bit", func(t *testing.T, e *env, key, _ string) {
			rec, _ := e.store.Get(t.Context(), key)
			rec.Sealed = bytes.Clone(rec.Sealed)
			rec.Sealed[len(rec.Sealed)-1] ^= 1
			e.store.Put(t.Context(), key, rec)
		}},
		{"truncated", func(t *testing.T, e *env, key, _ string) {
			rec, _ := e.store.Get(t.Context(), key)
			rec.Sealed = rec.Sealed[:10]
			e.store.Put(t.Context(), key, rec)
		}},
		{"empty", func(t *testing.T, e *env, key, _ string) {
			rec, _ := e.store.Get(t.Context(), key)
			rec.Sealed = nil
			e.store.Put(t.Context(), key, rec)
		}},
		// A record copied under another session's key does not open: the
		// box is bound to its key, so a store writer cannot swap users.
		{"moved from another session", func(t *testing.T, e *env, key, otherKey string) {
			rec, _ := e.store.Get(t.Context(), otherKey)
			e.store.Put(t.Context(), key, rec)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ck, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			_, _, mallory := e.create(t, session.User{Subject: "mallory"}, "sid-m", e.tokens(time.Hour))
			c.damage(t, e, session.StoreKey(ck.Value), mallory.Key())
			e.wantEnded(t, h, session.ReasonExpired)
			e.wantEnded(t, h, session.ReasonExpired)
		})
	}
}

// failingStore fails every call with err.
type failingStore struct {
	session.Store
	err error
}

func (f failingStore) Get(context.Context, string) (session.Record, error) {
	return session.Record{}, f.err
}

func (f failingStore) Put(context.Context, string, session.Record) error { return f.err }

func TestStoreFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	m := session.NewManager(failingStore{e.store, errors.New("connection refused")}, e.ring, e.ref, session.WithClock(e.clock.Now))
	s, err := m.FromHeader(t.Context(), h)
	if s != nil || connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("FromHeader with a failing store = %v, %v; want unavailable", s, err)
	}
	if _, _, err := m.Create(t.Context(), alice, "", e.tokens(time.Hour)); err == nil {
		t.Error("Create with a failing store succeeded")
	}
	// The session itself is untouched.
	e.load(t, h)
}
