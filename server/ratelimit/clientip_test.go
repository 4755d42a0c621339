package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/custodian-bff/custodian/server/ratelimit"
)

// testTrusted are the proxies the tests trust: a load balancer subnet, an
// IPv6 one and a single ingress address.
var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("192.0.2.10/32"),
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		peer      string
		xff       []string // X-Forwarded-For lines
		forwarded []string // Forwarded lines
		trusted   []netip.Prefix
		want      string // "" for the zero Addr
	}{
		// Direct clients.
		{name: "direct IPv4 peer", peer: "203.0.113.7:51000", want: "203.0.113.7"},
		{name: "direct IPv6 peer", peer: "[2001:db8::7]:51000", want: "2001:db8::7"},
		{name: "IPv4-mapped peer is unmapped", peer: "[::ffff:203.0.113.7]:51000", want: "203.0.113.7"},
		{name: "IPv6 peer zone dropped", peer: "[fe80::1%eth0]:51000", want: "fe80::1"},
		{name: "peer without a port", peer: "203.0.113.7", want: "203.0.113.7"},
		{name: "peer that is not an address", peer: "pipe", want: ""},
		{name: "no trusted proxies: XFF ignored", peer: "10.0.0.1:1", xff: []string{"198.51.100.1"}, trusted: []netip.Prefix{}, want: "10.0.0.1"},

		// Spoofing: an untrusted peer's headers mean nothing.
		{name: "untrusted peer with spoofed XFF", peer: "203.0.113.7:1", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "untrusted peer with spoofed trusted-looking XFF", peer: "203.0.113.7:1", xff: []string{"198.51.100.1, 10.0.0.9"}, want: "203.0.113.7"},
		{name: "untrusted peer with spoofed Forwarded", peer: "203.0.113.7:1", forwarded: []string{"for=198.51.100.1"}, want: "203.0.113.7"},
		{name: "untrusted IPv6 peer with spoofed XFF", peer: "[2001:db8::7]:1", xff: []string{"198.51.100.1"}, want: "2001:db8::7"},

		// X-Forwarded-For from trusted proxies.
		{name: "one hop", peer: "10.0.0.1:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "one hop with spaces", peer: "10.0.0.1:1", xff: []string{"  198.51.100.1  "}, want: "198.51.100.1"},
		{name: "three hops, trusted ones skipped", peer: "10.0.0.1:1", xff: []string{"198.51.100.1, 10.1.1.1, 192.0.2.10"}, want: "198.51.100.1"},
		{name: "client-forged left entries are not believed", peer: "10.0.0.1:1", xff: []string{"1.1.1.1, 198.51.100.1, 10.1.1.1"}, want: "198.51.100.1"},
		{name: "multiple XFF lines are one list", peer: "10.0.0.1:1", xff: []string{"1.1.1.1, 198.51.100.1", "10.2.2.2"}, want: "198.51.100.1"},
		{name: "multiple XFF lines, client on the last", peer: "10.0.0.1:1", xff: []string{"1.1.1.1", "198.51.100.9"}, want: "198.51.100.9"},
		{name: "empty list elements skipped", peer: "10.0.0.1:1", xff: []string{"198.51.100.1,, ,10.1.1.1,"}, want: "198.51.100.1"},
		{name: "every hop trusted: the leftmost", peer: "10.0.0.1:1", xff: []string{"10.3.3.3, 10.2.2.2"}, want: "10.3.3.3"},
		{name: "IPv6 hop", peer: "10.0.0.1:1", xff: []string{"2001:db8::42"}, want: "2001:db8::42"},
		{name: "IPv6 hop in brackets with port", peer: "10.0.0.1:1", xff: []string{"[2001:db8::42]:8443"}, want: "2001:db8::42"},
		{name: "IPv4 hop with port", peer: "10.0.0.1:1", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "IPv6 trusted peer", peer: "[fd00::1]:1", xff: []string{"198.51.100.1, fd00::2"}, want: "198.51.100.1"},
		{name: "mapped hop unmapped", peer: "10.0.0.1:1", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "mapped trusted peer", peer: "[::ffff:10.0.0.1]:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},

		// Malformed entries stop the walk at the last good hop.
		{name: "junk right after the peer", peer: "10.0.0.1:1", xff: []string{"198.51.100.1, junk"}, want: "10.0.0.1"},
		{name: "junk behind a trusted hop", peer: "10.0.0.1:1", xff: []string{"198.51.100.1, junk, 10.1.1.1"}, want: "10.1.1.1"},
		{name: "junk beyond the client is never reached", peer: "10.0.0.1:1", xff: []string{"junk, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "host name", peer: "10.0.0.1:1", xff: []string{"client.example.com"}, want: "10.0.0.1"},
		{name: "bad port", peer: "10.0.0.1:1", xff: []string{"198.51.100.1:99999999"}, want: "10.0.0.1"},
		{name: "unterminated bracket", peer: "10.0.0.1:1", xff: []string{"[2001:db8::1"}, want: "10.0.0.1"},
		{name: "XFF wins over Forwarded", peer: "10.0.0.1:1", xff: []string{"198.51.100.1"}, forwarded: []string{"for=198.51.100.2"}, want: "198.51.100.1"},

		// RFC 7239 Forwarded, when there is no X-Forwarded-For.
		{name: "Forwarded IPv4", peer: "10.0.0.1:1", forwarded: []string{"for=198.51.100.1;proto=https"}, want: "198.51.100.1"},
		{name: "Forwarded quoted IPv6 with port", peer: "10.0.0.1:1", forwarded: []string{`for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded quoted IPv6 without port", peer: "10.0.0.1:1", forwarded: []string{`For="[2001:db8:cafe::17]"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded quoted IPv4 with port", peer: "10.0.0.1:1", forwarded: []string{`for="198.51.100.1:4711"`}, want: "198.51.100.1"},
		{name: "Forwarded obfuscated port", peer: "10.0.0.1:1", forwarded: []string{`for="198.51.100.1:_abc"`}, want: "198.51.100.1"},
		{name: "Forwarded chain, trusted skipped", peer: "10.0.0.1:1", forwarded: []string{`for=198.51.100.1;by=10.1.1.1, for="[fd00::5]";proto=http`}, want: "198.51.100.1"},
		{name: "Forwarded several lines", peer: "10.0.0.1:1", forwarded: []string{"for=1.1.1.1, for=198.51.100.1", "for=10.1.1.1"}, want: "198.51.100.1"},
		{name: "Forwarded quoted comma and semicolon", peer: "10.0.0.1:1", forwarded: []string{`for=198.51.100.1;host="a,b;c", for=10.1.1.1`}, want: "198.51.100.1"},
		{name: "Forwarded unknown stops", peer: "10.0.0.1:1", forwarded: []string{"for=198.51.100.1, for=unknown"}, want: "10.0.0.1"},
		{name: "Forwarded obfuscated node stops", peer: "10.0.0.1:1", forwarded: []string{"for=198.51.100.1, for=_hidden, for=10.1.1.1"}, want: "10.1.1.1"},
		{name: "Forwarded element without for stops", peer: "10.0.0.1:1", forwarded: []string{"for=198.51.100.1, proto=https"}, want: "10.0.0.1"},
		{name: "Forwarded two for parameters stop", peer: "10.0.0.1:1", forwarded: []string{"for=198.51.100.1;for=198.51.100.2"}, want: "10.0.0.1"},
		{name: "Forwarded unquoted IPv6 in brackets", peer: "10.0.0.1:1", forwarded: []string{"for=[2001:db8::9]"}, want: "2001:db8::9"},
		{name: "Forwarded unterminated quote", peer: "10.0.0.1:1", forwarded: []string{`for="198.51.100.1`}, want: "10.0.0.1"},
		{name: "Forwarded pair without value", peer: "10.0.0.1:1", forwarded: []string{"for"}, want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.forwarded {
				r.Header.Add("Forwarded", v)
			}
			trusted := testTrusted
			if tt.trusted != nil {
				trusted = tt.trusted
			}
			got := ratelimit.ClientIP(r, trusted)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPMiddleware(t *testing.T) {
	t.Parallel()
	var seen netip.Addr
	h := ratelimit.ClientIPMiddleware(testTrusted)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = ratelimit.FromContext(r.Context())
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if want := netip.MustParseAddr("198.51.100.1"); seen != want {
		t.Errorf("FromContext = %v, want %v", seen, want)
	}
	if got := ratelimit.FromContext(t.Context()); got.IsValid() {
		t.Errorf("FromContext of an empty context = %v, want the zero Addr", got)
	}
}

// FuzzClientIP checks that ClientIP never panics and answers either the
// peer or, for a trusted peer only, a valid address from the headers.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "198.51.100.1, 10.1.1.1", "")
	f.Add("10.0.0.1:1", "", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.1.1.1`)
	f.Add("203.0.113.7:1", "198.51.100.1", "for=198.51.100.2")
	f.Add("[fd00::1]:1", "[2001:db8::1]:80,,junk,", "")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:1.2.3.4", "")
	f.Add("10.0.0.1:1", "", `for="\"[::1]"; by=x, for=_hidden, for=unknown, for="1.2.3.4:_p"`)
	f.Add("garbage", "1.2.3.4", "for=1.2.3.4")
	f.Add("10.0.0.1:1", "fe80::1%eth0, 1.2.3.4:99999", "for=[fe80::1%25eth0]")
	f.Fuzz(func(t *testing.T, peer, xff, forwarded string) {
		r := &http.Request{RemoteAddr: peer, Header: http.Header{}}
		if xff != "" {
			r.Header["X-Forwarded-For"] = []string{xff}
		}
		if forwarded != "" {
			r.Header["Forwarded"] = []string{forwarded}
		}
		got := ratelimit.ClientIP(r, testTrusted)
		direct := ratelimit.ClientIP(&http.Request{RemoteAddr: peer}, testTrusted)
		if got == direct {
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP = %v: not a plain valid address", got)
		}
		trusted := false
		for _, p := range testTrusted {
			trusted = trusted || p.Contains(direct)
		}
		if !trusted {
			t.Fatalf("untrusted peer %v: ClientIP = %v from the headers", direct, got)
		}
		if xff == "" && forwarded == "" {
			t.Fatalf("ClientIP = %v without forwarding headers, peer %v", got, direct)
		}
	})
}
