package security

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	g := NewGuard("__Host-custodian", NewOrigins("https://shop.example/", []string{"https://app.example.test"}))
	withCookie := func(h http.Header) http.Header {
		h.Set("Cookie", "__Host-custodian=abc")
		return h
	}
	cases := []struct {
		name   string
		method string
		header http.Header
		ok     bool
	}{
		{"no cookie, foreign origin: nothing to protect", http.MethodPost, http.Header{"Origin": {"https://evil.example"}}, true},
		{"own origin", http.MethodPost, withCookie(http.Header{"Origin": {"https://shop.example"}}), true},
		{"allowed origin", http.MethodPost, withCookie(http.Header{"Origin": {"https://app.example.test"}}), true},
		{"no origin (server-side renderer, grpcurl)", http.MethodPost, withCookie(http.Header{}), true},
		{"foreign origin", http.MethodPost, withCookie(http.Header{"Origin": {"https://evil.example"}}), false},
		{"null origin", http.MethodPost, withCookie(http.Header{"Origin": {"null"}}), false},
		{"origin with a path is not an origin", http.MethodPost, withCookie(http.Header{"Origin": {"https://shop.example/x"}}), false},
		{"look-alike origin", http.MethodPost, withCookie(http.Header{"Origin": {"https://shop.example.evil.example"}}), false},
		{"two origins", http.MethodPost, withCookie(http.Header{"Origin": {"https://shop.example", "https://evil.example"}}), false},
		{"cross-site fetch without origin", http.MethodPost, withCookie(http.Header{"Sec-Fetch-Site": {"cross-site"}}), false},
		{"GET without a custom header", http.MethodGet, withCookie(http.Header{}), false},
		{"GET with X-CSRF", http.MethodGet, withCookie(http.Header{"X-Csrf": {"1"}}), true},
		{"GET with Connect-Protocol-Version", http.MethodGet, withCookie(http.Header{"Connect-Protocol-Version": {"1"}}), true},
		{"GET with X-CSRF from a foreign origin", http.MethodGet, withCookie(http.Header{"X-Csrf": {"1"}, "Origin": {"https://evil.example"}}), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := g.Check(c.method, c.header); (err == nil) != c.ok {
				t.Errorf("Check = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		tls       bool
		cookie    bool
		wantHSTS  bool
		wantStore bool
	}{
		{"plain anonymous", false, false, false, false},
		{"tls with session", true, true, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := Headers("__Host-custodian", c.tls)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.cookie {
				req.Header.Set("Cookie", "__Host-custodian=abc")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("missing nosniff or referrer policy: %v", rec.Header())
			}
			if got := rec.Header().Get("Strict-Transport-Security") != ""; got != c.wantHSTS {
				t.Errorf("HSTS present = %v, want %v", got, c.wantHSTS)
			}
			if got := rec.Header().Get("Cache-Control") == "private, no-store"; got != c.wantStore {
				t.Errorf("private no-store = %v, want %v", got, c.wantStore)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	if CORS(nil, 60) != nil {
		t.Fatal("CORS with no origins must install nothing (rs/cors would allow every origin)")
	}
	h := CORS([]string{"https://app.example.test"}, 7200)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for origin, allowed := range map[string]bool{"https://app.example.test": true, "https://evil.example": false, "null": false} {
		req := httptest.NewRequest(http.MethodOptions, "/acme.storefront.v1.AccountService/GetDashboard", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,x-csrf") // sorted and lower-case, as browsers send it
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("Access-Control-Allow-Origin")
		if allowed && (got != origin || rec.Header().Get("Access-Control-Allow-Credentials") != "true" || rec.Header().Get("Access-Control-Max-Age") != "7200") {
			t.Errorf("%s: preflight answer %v", origin, rec.Header())
		}
		if !allowed && got != "" {
			t.Errorf("%s: allowed as %q", origin, got)
		}
	}
}

func TestHTMLPage(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	HTMLPage(rec)
	for header, want := range map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := rec.Header().Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q is not strict", csp)
	}
}
