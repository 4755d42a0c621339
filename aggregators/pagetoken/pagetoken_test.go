package pagetoken_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/aggregators/pagetoken"
	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/session"
)

const (
	ordersPurpose   = "/acme.orders.v1.OrderService/ListOrders"
	productsPurpose = "/acme.catalog.v1.CatalogService/ListProducts"
	// backendToken is shaped like the demo backends' tokens: base64 of
	// the listing, the filter and an offset.
	backendToken = "b3JkZXJzAGFsaWNlADc" // base64url("orders\x00alice\x007")
)

// alphabet is base64url's.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func key(b byte) []byte { return bytes.Repeat([]byte{b}, keyring.KeySize) }

func newSealer(t testing.TB, keys ...[]byte) *pagetoken.Sealer {
	t.Helper()
	s, err := pagetoken.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sessions makes real sessions with a session.Manager and returns the
// context a request of each carries once the gateway has attached it.
type sessions struct {
	m *session.Manager
}

func newSessions(t testing.TB) *sessions {
	t.Helper()
	store, err := session.NewMemoryStore(100, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.New([][]byte{key(9)})
	if err != nil {
		t.Fatal(err)
	}
	return &sessions{m: session.NewManager(store, ring, nil)}
}

// signIn starts a session of subject and returns a request context in it.
func (s *sessions) signIn(t testing.TB, subject string) context.Context {
	t.Helper()
	cookie, _, err := s.m.Create(context.Background(), session.User{Subject: subject}, "", session.Tokens{AccessToken: "at", AccessExpiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	ctx := s.m.Attach(context.Background(), header)
	if _, ok := session.FromContext(ctx); !ok {
		t.Fatal("no session attached")
	}
	return ctx
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSealer(t, key(1))
	ss := newSessions(t)
	alice := ss.signIn(t, "alice")

	sealed, err := s.SealForSession(alice, ordersPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.OpenForSession(alice, ordersPurpose, sealed); err != nil || got != backendToken {
		t.Errorf("OpenForSession = %q, %v; want %q", got, err, backendToken)
	}
	public, err := s.SealPublic(productsPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.OpenPublic(productsPurpose, public); err != nil || got != backendToken {
		t.Errorf("OpenPublic = %q, %v; want %q", got, err, backendToken)
	}

	for _, tok := range []string{sealed, public} {
		if strings.Contains(tok, backendToken) || strings.ContainsAny(tok, "+/=") {
			t.Errorf("sealed token %q holds the backend's token or is not base64url without padding", tok)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatalf("sealed token %q is not base64url: %v", tok, err)
		}
		for _, needle := range []string{"orders", "alice", backendToken} {
			if bytes.Contains(raw, []byte(needle)) {
				t.Errorf("sealed token shows %q", needle)
			}
		}
	}
	// A fresh nonce every time: two seals of one token look unrelated.
	again, _ := s.SealForSession(alice, ordersPurpose, backendToken)
	if again == sealed {
		t.Error("sealing twice gave the same token")
	}
}

func TestEmptyStaysEmpty(t *testing.T) {
	t.Parallel()
	s := newSealer(t, key(1))
	alice := newSessions(t).signIn(t, "alice")
	for name, f := range map[string]func(string) (string, error){
		"SealPublic":     func(tok string) (string, error) { return s.SealPublic(productsPurpose, tok) },
		"OpenPublic":     func(tok string) (string, error) { return s.OpenPublic(productsPurpose, tok) },
		"SealForSession": func(tok string) (string, error) { return s.SealForSession(alice, ordersPurpose, tok) },
		"OpenForSession": func(tok string) (string, error) { return s.OpenForSession(alice, ordersPurpose, tok) },
	} {
		if got, err := f(""); got != "" || err != nil {
			t.Errorf("%s(\"\") = %q, %v; want \"\", nil", name, got, err)
		}
	}
	// The first page needs no session; the second does.
	if got, err := s.OpenForSession(context.Background(), ordersPurpose, ""); got != "" || err != nil {
		t.Errorf("OpenForSession without a session of \"\" = %q, %v", got, err)
	}
}

// TestRefusals presents tokens that must not open: each is refused with
// ErrInvalid and nothing of the backend's token comes back.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s := newSealer(t, key(1))
	other := newSealer(t, key(2))
	ss := newSessions(t)
	alice := ss.signIn(t, "alice")
	aliceAgain := ss.signIn(t, "alice") // her second session, e.g. another browser
	bob := ss.signIn(t, "bob")

	alices, err := s.SealForSession(alice, ordersPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	public, err := s.SealPublic(productsPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	otherGateway, err := other.SealForSession(alice, ordersPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(alices)
	padded := base64.URLEncoding.EncodeToString(raw)
	std := base64.StdEncoding.EncodeToString(raw)

	type open func(token string) (string, error)
	forSession := func(ctx context.Context, purpose string) open {
		return func(tok string) (string, error) { return s.OpenForSession(ctx, purpose, tok) }
	}
	publicFor := func(purpose string) open {
		return func(tok string) (string, error) { return s.OpenPublic(purpose, tok) }
	}
	cases := []struct {
		name  string
		open  open
		token string
	}{
		{"another user", forSession(bob, ordersPurpose), alices},
		{"another session of the same user", forSession(aliceAgain, ordersPurpose), alices},
		{"no session", forSession(context.Background(), ordersPurpose), alices},
		{"another purpose", forSession(alice, "/acme.orders.v1.OrderService/ListReturns"), alices},
		{"a session's token as a public one", publicFor(ordersPurpose), alices},
		{"a public token in a session", forSession(alice, productsPurpose), public},
		{"a public token of another purpose", publicFor(productsPurpose + "?category=books"), public},
		{"another gateway's key", forSession(alice, ordersPurpose), otherGateway},
		{"the backend's own token", forSession(alice, ordersPurpose), backendToken},
		{"garbage", forSession(alice, ordersPurpose), "not-a-token"},
		{"not base64", forSession(alice, ordersPurpose), "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%"},
		{"with padding", forSession(alice, ordersPurpose), padded},
		{"standard base64", forSession(alice, ordersPurpose), std},
		{"too long", forSession(alice, ordersPurpose), alices + strings.Repeat("A", pagetoken.MaxLen)},
		{"a key id alone", forSession(alice, ordersPurpose), alices[:8]},
	}
	for _, c := range cases {
		if c.token == alices {
			continue // an encoding that happens to spell the same token
		}
		got, err := c.open(c.token)
		if !errors.Is(err, pagetoken.ErrInvalid) || got != "" {
			t.Errorf("%s: got %q, %v; want ErrInvalid", c.name, got, err)
		}
	}

	// Every truncation and every change of one character is refused,
	// including the last one's unused low bits: a token has one spelling.
	for i := range len(alices) {
		if got, err := s.OpenForSession(alice, ordersPurpose, alices[:i]); err == nil && i > 0 {
			t.Errorf("truncated to %d characters: opened to %q", i, got)
		}
		for _, c := range []byte(alphabet) {
			if c == alices[i] {
				continue
			}
			tampered := alices[:i] + string(c) + alices[i+1:]
			if got, err := s.OpenForSession(alice, ordersPurpose, tampered); !errors.Is(err, pagetoken.ErrInvalid) {
				t.Fatalf("character %d changed to %q: opened to %q, %v", i, c, got, err)
			}
		}
	}
	// And so is a change of any bit of the box.
	for i := range len(raw) * 8 {
		box := bytes.Clone(raw)
		box[i/8] ^= 1 << (i % 8)
		if got, err := s.OpenForSession(alice, ordersPurpose, base64.RawURLEncoding.EncodeToString(box)); !errors.Is(err, pagetoken.ErrInvalid) {
			t.Fatalf("bit %d flipped: opened to %q, %v", i, got, err)
		}
	}
}

func TestSealForSessionNeedsASession(t *testing.T) {
	t.Parallel()
	s := newSealer(t, key(1))
	got, err := s.SealForSession(context.Background(), ordersPurpose, backendToken)
	if got != "" {
		t.Errorf("sealed %q without a session", got)
	}
	if _, ok := errors.AsType[*session.Error](err); !ok {
		t.Errorf("err = %v, want the session's *session.Error", err)
	}
}

// TestKeyRotation rotates the gateway's keys: a token sealed with the old
// key still opens while that key is in the ring, new tokens are sealed with
// the new key, and once the old key is gone its tokens are refused.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := key(1), key(2)
	before := newSealer(t, oldKey)
	during := newSealer(t, newKey, oldKey)
	after := newSealer(t, newKey)

	old, err := before.SealPublic(productsPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := during.OpenPublic(productsPurpose, old); err != nil || got != backendToken {
		t.Errorf("old token after rotation: %q, %v; want %q", got, err, backendToken)
	}
	fresh, err := during.SealPublic(productsPurpose, backendToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.OpenPublic(productsPurpose, fresh); err != nil || got != backendToken {
		t.Errorf("token sealed after rotation, old key retired: %q, %v", got, err)
	}
	if _, err := before.OpenPublic(productsPurpose, fresh); !errors.Is(err, pagetoken.ErrInvalid) {
		t.Errorf("a gateway without the new key opened its token: %v", err)
	}
	if _, err := after.OpenPublic(productsPurpose, old); !errors.Is(err, pagetoken.ErrInvalid) {
		t.Errorf("token of a retired key opened: %v", err)
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	s := newSealer(t, key(1))
	longest := strings.Repeat("t", pagetoken.MaxTokenLen)
	sealed, err := s.SealPublic(productsPurpose, longest)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != pagetoken.MaxLen {
		t.Errorf("sealed %d-byte token has %d characters, want MaxLen %d", pagetoken.MaxTokenLen, len(sealed), pagetoken.MaxLen)
	}
	if got, err := s.OpenPublic(productsPurpose, sealed); err != nil || got != longest {
		t.Errorf("longest token does not round-trip: %v", err)
	}
	if got, err := s.SealPublic(productsPurpose, longest+"t"); !errors.Is(err, pagetoken.ErrTooLong) || got != "" {
		t.Errorf("SealPublic of %d bytes = %q, %v; want ErrTooLong", pagetoken.MaxTokenLen+1, got, err)
	}
	alice := newSessions(t).signIn(t, "alice")
	if got, err := s.SealForSession(alice, ordersPurpose, longest+"t"); !errors.Is(err, pagetoken.ErrTooLong) || got != "" {
		t.Errorf("SealForSession of %d bytes = %q, %v; want ErrTooLong", pagetoken.MaxTokenLen+1, got, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for name, keys := range map[string][][]byte{
		"no keys":         nil,
		"short key":       {make([]byte, 16)},
		"second key long": {key(1), make([]byte, 33)},
	} {
		if s, err := pagetoken.New(keys); err == nil || s != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, s, err)
		}
	}
}

// FuzzOpen presents arbitrary strings as page tokens: opening never panics
// and never opens a token the sealer did not seal for that use; what it
// seals opens to what it sealed.
//
// The keys are random: each fuzzing worker runs this setup again and must
// not open the tokens another process sealed, which it would with fixed
// keys but could not tell from forgeries.
func FuzzOpen(f *testing.F) {
	k1, k2 := make([]byte, keyring.KeySize), make([]byte, keyring.KeySize)
	_, _ = rand.Read(k1)
	_, _ = rand.Read(k2)
	s := newSealer(f, k1, k2)
	ss := newSessions(f)
	alice := ss.signIn(f, "alice")
	sealed := map[string]string{} // sealed token -> backend token, for alice's orders
	for _, tok := range []string{backendToken, "x", "orders\x00alice\x0010", strings.Repeat("z", pagetoken.MaxTokenLen)} {
		st, err := s.SealForSession(alice, ordersPurpose, tok)
		if err != nil {
			f.Fatal(err)
		}
		sealed[st] = tok
		f.Add(st, tok)
		f.Add(st[:len(st)-1], tok)
		f.Add(st+"A", tok)
	}
	public, _ := s.SealPublic(ordersPurpose, backendToken)
	for _, seed := range []string{"", "A", backendToken, public, "%%%", strings.Repeat("A", pagetoken.MaxLen+1), "\x00\xff"} {
		f.Add(seed, seed)
	}
	f.Fuzz(func(t *testing.T, token, backend string) {
		got, err := s.OpenForSession(alice, ordersPurpose, token)
		switch want, ok := sealed[token]; {
		case token == "":
			if got != "" || err != nil {
				t.Fatalf("empty token opened to %q, %v", got, err)
			}
		case ok:
			if got != want || err != nil {
				t.Fatalf("sealed token opened to %q, %v; want %q", got, err, want)
			}
		case err == nil:
			t.Fatalf("opened %q, which it never sealed, to %q", token, got)
		case !errors.Is(err, pagetoken.ErrInvalid) || got != "":
			t.Fatalf("refusal %q, %v; want ErrInvalid and nothing", got, err)
		}
		if _, err := s.OpenPublic(ordersPurpose, token); err == nil && token != "" && token != public {
			t.Fatalf("opened %q as public, which it never sealed", token)
		}

		st, err := s.SealForSession(alice, ordersPurpose, backend)
		if len(backend) > pagetoken.MaxTokenLen {
			if !errors.Is(err, pagetoken.ErrTooLong) {
				t.Fatalf("sealed a %d-byte token: %v", len(backend), err)
			}
			return
		}
		if err != nil || len(st) > pagetoken.MaxLen {
			t.Fatalf("SealForSession(%q) = %q (%d characters), %v", backend, st, len(st), err)
		}
		if back, err := s.OpenForSession(alice, ordersPurpose, st); back != backend || err != nil {
			t.Fatalf("round trip of %q gave %q, %v", backend, back, err)
		}
	})
}
