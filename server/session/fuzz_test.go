package session

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/keyring"
)

// fuzzSessionID is the one live session of FuzzCookieDecoding. It is fixed,
// so that the committed corpus can hold it.
const fuzzSessionID = "REALsession-id_0123456789abcdefghijklmnopqr"

// fuzzRefresher is a Refresher that is never needed: the fuzz target only
// loads sessions.
type fuzzRefresher struct{}

func (fuzzRefresher) Refresh(context.Context, string) (Tokens, error) { return Tokens{}, nil }

// fuzzManager returns a Manager on a memory store holding one live session,
// alice's, named by fuzzSessionID, on a clock that stands still.
func fuzzManager(tb testing.TB) *Manager {
	tb.Helper()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	store, err := NewMemoryStore(16, clock)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keyring.New([][]byte{bytes.Repeat([]byte{7}, keyring.KeySize)})
	if err != nil {
		tb.Fatal(err)
	}
	m := NewManager(store, keys, fuzzRefresher{}, WithClock(clock))
	key := storeKey(fuzzSessionID)
	sealed, err := m.seal(key, payload{User: User{Subject: "alice"}, LogoutID: "logout-id", Tokens: Tokens{AccessToken: "at", RefreshToken: "rt", AccessExpiry: now.Add(time.Hour)}})
	if err != nil {
		tb.Fatal(err)
	}
	rec := Record{Subject: "alice", Created: now, LastSeen: now, AbsoluteExpiry: now.Add(12 * time.Hour), Expires: now.Add(time.Hour), Sealed: sealed}
	if err := store.Put(context.Background(), key, rec); err != nil {
		tb.Fatal(err)
	}
	return m
}

// FuzzCookieDecoding sends arbitrary Cookie header lines: decoding never
// panics, only the live session's id yields a session, and everything
// else is NO_SESSION.
func FuzzCookieDecoding(f *testing.F) {
	const name = "__Host-custodian"
	for _, seed := range [][2]string{
		{name + "=" + fuzzSessionID, ""},
		{"theme=dark; " + name + "=" + fuzzSessionID + "; lang=en", ""},
		{name + `="` + fuzzSessionID + `"`, ""},
		{name + "=" + fuzzSessionID + "=", ""},
		{name + "=" + fuzzSessionID[:len(fuzzSessionID)-1], ""},
		{name + "=" + fuzzSessionID + "A", ""},
		{name + "=junk; " + name + "=" + fuzzSessionID, ""},
		{name + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", name + "=" + fuzzSessionID},
		{"__host-custodian=" + fuzzSessionID, "__Host-custodian2=" + fuzzSessionID},
		{name + "=" + fuzzSessionID[:20] + "%2B" + fuzzSessionID[23:], ""},
		{name + "=\x00\xff;;;==", name},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	m := fuzzManager(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		header := http.Header{}
		for _, line := range []string{line1, line2} {
			if line != "" {
				header.Add("Cookie", line)
			}
		}
		id := m.cookie.idFrom(header.Values("Cookie"))
		// The reference: the first well-formed value among the cookies
		// of that name, as the standard parser reads them.
		want := ""
		for _, c := range (&http.Request{Header: header}).CookiesNamed(name) {
			if wellFormedID(c.Value) {
				want = c.Value
				break
			}
		}
		if id != want {
			t.Fatalf("idFrom(%q) = %q, want %q", header.Values("Cookie"), id, want)
		}
		s, err := m.FromHeader(ctx, header)
		if id == fuzzSessionID {
			if err != nil || s == nil || s.User.Subject != "alice" {
				t.Fatalf("FromHeader(%q) with the live session's id: %v, %v", header.Values("Cookie"), s, err)
			}
			return
		}
		if s != nil || err == nil {
			t.Fatalf("FromHeader(%q) (id %q) = session of %q", header.Values("Cookie"), id, s.User.Subject)
		}
		if reason := ReasonOf(err); reason != ReasonNoSession {
			t.Fatalf("FromHeader(%q) (id %q): %v, reason %v, want NO_SESSION", header.Values("Cookie"), id, err, reason)
		}
	})
}
