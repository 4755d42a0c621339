package session_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

func TestCreateCookie(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     []session.Option
		wantName string
		wantSite http.SameSite
	}{
		{"defaults", nil, "__Host-custodian", http.SameSiteStrictMode},
		{"lax", []session.Option{session.WithCookie(session.Cookie{SameSite: http.SameSiteLaxMode})}, "__Host-custodian", http.SameSiteLaxMode},
		{"none is refused", []session.Option{session.WithCookie(session.Cookie{SameSite: http.SameSiteNoneMode})}, "__Host-custodian", http.SameSiteStrictMode},
		{"default mode", []session.Option{session.WithCookie(session.Cookie{SameSite: http.SameSiteDefaultMode})}, "__Host-custodian", http.SameSiteStrictMode},
		{"custom name", []session.Option{session.WithCookie(session.Cookie{Name: "__Host-shop"})}, "__Host-shop", http.SameSiteStrictMode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c.opts...)
			ck, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
			if ck.Name != c.wantName || e.m.CookieName() != c.wantName {
				t.Errorf("name %q (CookieName %q), want %q", ck.Name, e.m.CookieName(), c.wantName)
			}
			if !ck.HttpOnly || !ck.Secure || ck.Path != "/" || ck.Domain != "" || ck.SameSite != c.wantSite {
				t.Errorf("attributes HttpOnly=%v Secure=%v Path=%q Domain=%q SameSite=%v", ck.HttpOnly, ck.Secure, ck.Path, ck.Domain, ck.SameSite)
			}
			if ck.MaxAge != 0 || !ck.Expires.IsZero() {
				t.Errorf("MaxAge=%d Expires=%v, want a session cookie", ck.MaxAge, ck.Expires)
			}
			if len(ck.Value) != 43 {
				t.Errorf("value %q has %d chars, want 43", ck.Value, len(ck.Value))
			}
			if raw, err := base64.RawURLEncoding.DecodeString(ck.Value); err != nil || len(raw) != 32 {
				t.Errorf("value %q is not 32 bytes of base64url: %v", ck.Value, err)
			}
			if err := ck.Valid(); err != nil {
				t.Errorf("invalid cookie: %v", err)
			}
			if s := e.load(t, h); s.User != alice {
				t.Errorf("loaded user %+v", s.User)
			}
		})
	}
}

func TestClearCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.WithCookie(session.Cookie{SameSite: http.SameSiteLaxMode}))
	ck := e.m.ClearCookie()
	if ck.Name != "__Host-custodian" || ck.Value != "" || ck.MaxAge >= 0 || ck.Path != "/" || !ck.Secure || !ck.HttpOnly || ck.Domain != "" || ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("ClearCookie = %#v", ck)
	}
	if got := ck.String(); !strings.Contains(got, "Max-Age=0") {
		t.Errorf("ClearCookie header %q does not delete the cookie", got)
	}
}

func TestCreateGivesNewIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seen := make(map[string]bool)
	logoutIDs := make(map[string]bool)
	for range 50 {
		ck, _, s := e.create(t, alice, "sid-1", e.tokens(time.Hour))
		if seen[ck.Value] || logoutIDs[s.LogoutID] {
			t.Fatalf("id %q or logout id %q given twice", ck.Value, s.LogoutID)
		}
		seen[ck.Value], logoutIDs[s.LogoutID] = true, true
		if s.LogoutID == "" || s.LogoutID == ck.Value {
			t.Errorf("logout id %q", s.LogoutID)
		}
	}
}

func TestIDFrom(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("aB3-_", 8) + "xyz" // 43 chars
	const name = "__Host-custodian"
	cases := []struct {
		name    string
		cookies []string // Cookie header lines
		want    string
	}{
		{"none", nil, ""},
		{"ours", []string{name + "=" + id}, id},
		{"among others", []string{"theme=dark; " + name + "=" + id + "; lang=en"}, id},
		{"after malformed others", []string{`bad"cookie; =novalue; x=y"z; ` + name + "=" + id}, id},
		{"in a second header line", []string{"theme=dark", name + "=" + id}, id},
		{"first well-formed of two", []string{name + "=junk; " + name + "=" + id}, id},
		{"quoted", []string{name + `="` + id + `"`}, id},
		{"other name", []string{"__Host-other=" + id}, ""},
		{"name differs in case", []string{"__host-custodian=" + id}, ""},
		{"empty", []string{name + "="}, ""},
		{"too short", []string{name + "=" + id[:42]}, ""},
		{"too long", []string{name + "=" + id + "a"}, ""},
		{"padded base64", []string{name + "=" + id[:42] + "="}, ""},
		{"standard base64", []string{name + "=" + id[:42] + "+"}, ""},
		{"slash", []string{name + "=" + id[:42] + "/"}, ""},
		{"dot", []string{name + "=" + id[:42] + "."}, ""},
		{"non-ascii", []string{name + "=" + id[:41] + "é"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, line := range c.cookies {
				h.Add("Cookie", line)
			}
			if got := session.IDFrom(session.Cookie{}, h); got != c.want {
				t.Errorf("IDFrom = %q, want %q", got, c.want)
			}
		})
	}
}

func TestFromHeaderRefusesUnknownCookies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ck, _, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	id := ck.Value
	tampered := []byte(id)
	if tampered[10] == 'A' {
		tampered[10] = 'B'
	} else {
		tampered[10] = 'A'
	}
	cases := []struct {
		name   string
		header http.Header
	}{
		{"no cookie", http.Header{}},
		{"other cookies only", cookieHeader("theme", "dark")},
		{"wrong length", cookieHeader(ck.Name, id+"a")},
		{"truncated", cookieHeader(ck.Name, id[:42])},
		{"not base64url", cookieHeader(ck.Name, id[:42]+"~")},
		{"unknown id", cookieHeader(ck.Name, strings.Repeat("A", 43))},
		{"tampered", cookieHeader(ck.Name, string(tampered))},
		{"store key as id", cookieHeader(ck.Name, session.StoreKey(id))},
		{"ours under another name", cookieHeader("__Host-other", id)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := e.m.FromHeader(context.Background(), c.header)
			if s != nil {
				t.Fatalf("FromHeader gave session %+v", s.User)
			}
			wantRefused(t, err, session.ReasonNoSession)
		})
	}
}
