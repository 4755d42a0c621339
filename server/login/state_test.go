package login

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPruneStates: which of a browser's login cookies a new attempt
// deletes.
func TestPruneStates(t *testing.T) {
	t.Parallel()
	keys := fuzzKeys(t)
	now := fuzzNow
	// attempt seals an attempt created age ago and returns its cookie.
	attempt := func(age time.Duration) *http.Cookie {
		st := newLoginState("https://gw.example/auth/callback", "/", "", now.Add(-age))
		c, err := sealState(keys, st)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	header := func(cookies ...*http.Cookie) http.Header {
		var parts []string
		for _, c := range cookies {
			parts = append(parts, c.Name+"="+c.Value)
		}
		return http.Header{"Cookie": {strings.Join(parts, "; ")}}
	}
	deleted := func(t *testing.T, h http.Header) []string {
		t.Helper()
		var names []string
		for _, c := range pruneStates(keys, h, now) {
			if c.MaxAge >= 0 || c.Value != "" || c.Path != "/" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("deletion %q: attributes differ from the login cookie's", c.String())
			}
			names = append(names, c.Name)
		}
		slices.Sort(names)
		return names
	}
	names := func(cookies ...*http.Cookie) []string {
		var out []string
		for _, c := range cookies {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	other := &http.Cookie{Name: "__Host-custodian", Value: "session"}
	theme := &http.Cookie{Name: "theme", Value: "dark"}
	junk := &http.Cookie{Name: loginCookiePrefix + "junk", Value: "not-sealed"}
	foreign := &http.Cookie{Name: loginCookiePrefix + "foreign", Value: fuzzOtherKeySeal} // another key ring's

	t.Run("room left", func(t *testing.T) {
		t.Parallel()
		a, b := attempt(time.Minute), attempt(2*time.Minute)
		if got := deleted(t, header(other, a, theme, b, foreign)); len(got) != 0 {
			t.Errorf("deleted %v, want nothing: three attempts leave room for the new one", got)
		}
	})
	t.Run("the oldest beyond the bound", func(t *testing.T) {
		t.Parallel()
		var all []*http.Cookie
		for i := range 7 {
			all = append(all, attempt(time.Duration(i+1)*time.Minute)) // all[0] newest
		}
		h := header(all[3], all[0], other, all[6], all[1], all[5], all[2], all[4])
		if got, want := deleted(t, h), names(all[maxLoginAttempts-1:]...); !slices.Equal(got, want) {
			t.Errorf("deleted %v, want the oldest %v", got, want)
		}
	})
	t.Run("cookies that do not open count as oldest", func(t *testing.T) {
		t.Parallel()
		a, b, c := attempt(3*time.Minute), attempt(2*time.Minute), attempt(time.Minute)
		if got, want := deleted(t, header(junk, a, foreign, b, c)), names(junk, foreign); !slices.Equal(got, want) {
			t.Errorf("deleted %v, want %v", got, want)
		}
	})
	t.Run("attempts past their lifetime go at once", func(t *testing.T) {
		t.Parallel()
		old, future, a := attempt(loginLifetime+time.Second), attempt(-2*time.Minute), attempt(time.Minute)
		if got, want := deleted(t, header(old, a, future)), names(old, future); !slices.Equal(got, want) {
			t.Errorf("deleted %v, want %v", got, want)
		}
	})
	t.Run("a cookie twice counts once", func(t *testing.T) {
		t.Parallel()
		a, b := attempt(time.Minute), attempt(2*time.Minute)
		if got := deleted(t, header(a, b, a, b, a)); len(got) != 0 {
			t.Errorf("deleted %v, want nothing", got)
		}
	})
	t.Run("deletions per answer are bounded", func(t *testing.T) {
		t.Parallel()
		var many []*http.Cookie
		for i := range 100 {
			many = append(many, &http.Cookie{Name: fmt.Sprintf("%sx%03d", loginCookiePrefix, i), Value: "x"})
		}
		if got := deleted(t, header(many...)); len(got) != maxLoginCookiesCleared {
			t.Errorf("%d deletions, want %d", len(got), maxLoginCookiesCleared)
		}
	})
}

// FuzzPruneStates: whatever Cookie header a browser sends, a new attempt
// never panics, deletes only login cookies, each once, at most
// maxLoginCookiesCleared of them, and never the genuine attempt when it
// is the only one.
func FuzzPruneStates(f *testing.F) {
	keys := fuzzKeys(f)
	for _, seed := range []string{
		"",
		fuzzCookieName + "=" + fuzzGenuine,
		fuzzCookieName + "=" + fuzzGenuine + "; " + fuzzExpiredName + "=" + fuzzExpired,
		"theme=dark; " + fuzzCookieName + "=junk; " + loginCookiePrefix + "x=" + fuzzOtherKeySeal,
		strings.Repeat(loginCookiePrefix+"a=b; ", 40),
		"\x00; =; ;;" + loginCookiePrefix,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cookieHeader string) {
		out := pruneStates(keys, http.Header{"Cookie": {cookieHeader}}, fuzzNow)
		if len(out) > maxLoginCookiesCleared {
			t.Fatalf("%d deletions, want at most %d", len(out), maxLoginCookiesCleared)
		}
		seen := map[string]bool{}
		for _, c := range out {
			if !strings.HasPrefix(c.Name, loginCookiePrefix) || c.MaxAge >= 0 || seen[c.Name] {
				t.Fatalf("deletion %q: not a login cookie's, or twice", c.String())
			}
			seen[c.Name] = true
		}
		if cookieHeader == fuzzCookieName+"="+fuzzGenuine && len(out) != 0 {
			t.Fatalf("the only attempt was deleted")
		}
	})
}
