package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
)

func ringOf(t testing.TB, keys ...byte) *keyring.Ring {
	t.Helper()
	var kk [][]byte
	for _, k := range keys {
		kk = append(kk, bytes.Repeat([]byte{k}, keyring.KeySize))
	}
	r, err := keyring.New(kk)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeRefresher is a Refresher whose behaviour the test controls.
type fakeRefresher struct {
	// respond gives the answer to a refresh of rt; nil: rotated tokens
	// valid for 10 minutes.
	respond func(rt string) (session.Tokens, error)
	// gate, when not nil, holds every refresh until it is closed.
	gate chan struct{}
	// entered receives the refresh token of every call as it starts.
	entered chan string
	now     func() time.Time
	// t, when set, fails if two refreshes of one refresh token overlap:
	// refreshes of one session must never run at once.
	t testing.TB

	mu       sync.Mutex
	calls    int
	got      []string
	ctxErrs  []error         // each call's ctx.Err() when it was let through
	inFlight map[string]bool // refresh tokens being redeemed
}

func newRefresher(now func() time.Time) *fakeRefresher {
	return &fakeRefresher{now: now, entered: make(chan string, 1000)}
}

func (f *fakeRefresher) Refresh(ctx context.Context, rt string) (session.Tokens, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.got = append(f.got, rt)
	if f.inFlight[rt] && f.t != nil {
		f.t.Errorf("two refreshes of refresh token %q at once", rt)
	}
	if f.inFlight == nil {
		f.inFlight = make(map[string]bool)
	}
	f.inFlight[rt] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.inFlight, rt)
		f.mu.Unlock()
	}()
	f.entered <- rt
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	f.mu.Unlock()
	if f.respond != nil {
		return f.respond(rt)
	}
	return session.Tokens{
		AccessToken:  fmt.Sprintf("at-refreshed-%d", n),
		RefreshToken: rt + "+",
		AccessExpiry: f.now().Add(10 * time.Minute),
	}, nil
}

func (f *fakeRefresher) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeRefresher) Got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// env is a manager on a fake clock, a memory store and a fake refresher.
type env struct {
	clock *sessiontest.Clock
	store *session.MemoryStore
	ring  *keyring.Ring
	ref   *fakeRefresher
	m     *session.Manager
}

const (
	idle     = 32 * time.Minute // idle/32 = 1 minute
	absolute = 4 * time.Hour
)

func newEnv(t testing.TB, opts ...session.Option) *env {
	t.Helper()
	clock := sessiontest.NewClock(sessiontest.Epoch)
	store, err := session.NewMemoryStore(10000, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clock: clock, store: store, ring: ringOf(t, 1), ref: newRefresher(clock.Now)}
	e.ref.t = t
	e.m = e.manager(e.ring, opts...)
	return e
}

// manager returns another manager on the same clock, store and refresher.
func (e *env) manager(ring *keyring.Ring, opts ...session.Option) *session.Manager {
	opts = append([]session.Option{session.WithClock(e.clock.Now), session.WithTimeouts(idle, absolute)}, opts...)
	return session.NewManager(e.store, ring, e.ref, opts...)
}

var alice = session.User{Subject: "alice-sub", Name: "Alice Example", Email: "alice@example.com", Picture: "https://example.com/alice.png"}

// tokens returns tokens whose access token is valid for d.
func (e *env) tokens(d time.Duration) session.Tokens {
	return session.Tokens{
		AccessToken:  "at-secret-original",
		RefreshToken: "rt-secret-original",
		IDToken:      "it-secret-original",
		AccessExpiry: e.clock.Now().Add(d),
	}
}

// create creates a session and returns the cookie and the header that
// carries it.
func (e *env) create(t testing.TB, user session.User, sid string, tokens session.Tokens) (*http.Cookie, http.Header, *session.Session) {
	t.Helper()
	c, s, err := e.m.Create(context.Background(), user, sid, tokens)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return c, cookieHeader(c.Name, c.Value), s
}

func cookieHeader(name, value string) http.Header {
	h := http.Header{}
	h.Add("Cookie", (&http.Cookie{Name: name, Value: value}).String())
	return h
}

// load loads the session named by h, failing the test without one.
func (e *env) load(t testing.TB, h http.Header) *session.Session {
	t.Helper()
	s, err := e.m.FromHeader(context.Background(), h)
	if err != nil {
		t.Fatalf("FromHeader: %v", err)
	}
	return s
}

// wantRefused fails unless err is the session verdict for reason, whose
// browser form is CodeUnauthenticated with a SessionError detail of reason.
func wantRefused(t testing.TB, err error, reason session.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", reason)
	}
	se, ok := errors.AsType[*session.Error](err)
	if !ok {
		t.Fatalf("%T (%v) is not a *session.Error, want %v", err, err, reason)
	}
	if se.Reason != reason || session.ReasonOf(err) != reason {
		t.Errorf("reason %v (%v), want %v", se.Reason, err, reason)
	}
	ce := se.ConnectError()
	if code := ce.Code(); code != connect.CodeUnauthenticated {
		t.Errorf("code %v (%v), want unauthenticated", code, ce)
	}
	if got := detailOf(t, ce); got.GetReason() != reason || got.GetLoginUrl() != se.LoginURL {
		t.Errorf("SessionError detail %v, want reason %v and login url %q", got, reason, se.LoginURL)
	}
}

// browserCode returns the code a browser gets for err: that of its
// session verdict's browser form, or of the connect error it carries.
func browserCode(err error) connect.Code {
	if se, ok := errors.AsType[*session.Error](err); ok {
		return se.ConnectError().Code()
	}
	return connect.CodeOf(err)
}

// loginURLOf returns the login URL the browser is told of, from the
// SessionError detail of err's browser form, or "".
func loginURLOf(err error) string {
	se, ok := errors.AsType[*session.Error](err)
	if !ok {
		return ""
	}
	for _, d := range se.ConnectError().Details() {
		if v, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if detail, ok := v.(*custodianv1.SessionError); ok {
				return detail.GetLoginUrl()
			}
		}
	}
	return ""
}

// detailOf returns the SessionError detail of ce, failing without exactly
// one.
func detailOf(t testing.TB, ce *connect.Error) *custodianv1.SessionError {
	t.Helper()
	var found []*custodianv1.SessionError
	for _, d := range ce.Details() {
		v, err := connectproto.UnmarshalErrorDetail(d)
		if err != nil {
			t.Fatalf("detail %v: %v", d, err)
		}
		if detail, ok := v.(*custodianv1.SessionError); ok {
			found = append(found, detail)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d SessionError details in %v, want 1", len(found), ce)
	}
	return found[0]
}

// wantEnded fails unless loading h is refused with reason.
func (e *env) wantEnded(t testing.TB, h http.Header, reason session.Reason) {
	t.Helper()
	s, err := e.m.FromHeader(context.Background(), h)
	if s != nil {
		t.Errorf("FromHeader returned a session for %v", reason)
	}
	wantRefused(t, err, reason)
}
