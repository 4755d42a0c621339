package login

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", 2047)
	cases := []struct {
		name string
		in   string
		want string // "" means the input itself
	}{
		// Paths on the gateway's own origin are kept as they are.
		{"root", "/", ""},
		{"path", "/orders", ""},
		{"nested path", "/orders/o-1/items", ""},
		{"query", "/ok?x=1", ""},
		{"query and fragment", "/ok?x=1&y=2#top", ""},
		{"fragment", "/#/spa/route", ""},
		{"encoded characters", "/search?q=a%20b%26c", ""},
		{"encoded slash inside the path", "/files/a%2Fb", ""},
		{"double slash later in the path", "/a//b", ""},
		{"dot segment", "/./orders", ""},
		{"dot then double slash", "/.//evil.example", ""}, // the path //evil.example on this origin
		{"query holding a URL", "/next?u=https://evil.example", ""},
		{"non-ASCII", "/caf\u00e9", ""},
		{"at the length limit", "/" + strings.Repeat("a", 1023), ""},

		// Everything that could leave the origin, or is malformed, is "/".
		{"empty", "", "/"},
		{"absolute https", "https://evil.example", "/"},
		{"absolute http", "http://evil.example/x", "/"},
		{"scheme with one slash", "http:/evil.example", "/"},
		{"scheme without slash", "http:evil.example", "/"},
		{"javascript", "javascript:alert(1)", "/"},
		{"javascript mixed case", "JaVaScRiPt:alert(1)", "/"},
		{"data", "data:text/html,<script>alert(1)</script>", "/"},
		{"relative", "evil.example", "/"},
		{"dot relative", "./x", "/"},
		{"scheme-relative", "//evil.example", "/"},
		{"triple slash", "///evil.example", "/"},
		{"backslash", `/\evil.example`, "/"},
		{"two backslashes", `\\evil.example`, "/"},
		{"backslash later", `/a\b`, "/"},
		{"encoded slashes", "/%2F%2Fevil.example", "/"},
		{"encoded slash", "/%2F/evil.example", "/"},
		{"encoded slash lower case", "/%2f/evil.example", "/"},
		{"encoded backslash", "/%5Cevil.example", "/"},
		{"encoded backslashes", "/%5C%5Cevil.example", "/"},
		{"encoded tab", "/%09/evil.example", "/"},
		{"encoded newline", "/%0A/evil.example", "/"},
		{"encoded NUL", "/a%00b", "/"},
		{"tab first", "\t//evil.example", "/"},
		{"tab inside", "/\t/evil.example", "/"},
		{"newline inside", "/\n/evil.example", "/"},
		{"CR LF", "/ok\r\nSet-Cookie: x=1", "/"},
		{"NUL", "/ok\x00", "/"},
		{"DEL", "/ok\x7f", "/"},
		{"space", "/ok x", "/"},
		{"leading space", " /ok", "/"},
		{"bad escape", "/100%", "/"},
		{"bad escape digits", "/%zz", "/"},
		{"one over the length limit", "/" + strings.Repeat("a", 1024), "/"},
		{"2 KB", long, "/"},
		{"2 KB of slashes", strings.Repeat("/", 2048), "/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := c.want
			if want == "" {
				want = c.in
			}
			if got := SafeReturnTo(c.in); got != want {
				t.Errorf("SafeReturnTo(%q) = %q, want %q", c.in, got, want)
			}
			checkReturnTo(t, c.in, SafeReturnTo(c.in))
		})
	}
}

// checkReturnTo asserts what every result of SafeReturnTo must be: in or
// "/", a path on this origin that no browser reads as another host.
func checkReturnTo(t *testing.T, in, got string) {
	t.Helper()
	if got != "/" && got != in {
		t.Fatalf("SafeReturnTo(%q) = %q: neither the input nor \"/\"", in, got)
	}
	if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, `/\`) {
		t.Fatalf("SafeReturnTo(%q) = %q: not a path starting with a single slash", in, got)
	}
	if len(got) > maxReturnTo {
		t.Fatalf("SafeReturnTo(%q) = %q: longer than %d", in, got, maxReturnTo)
	}
	for _, c := range []byte(got) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			t.Fatalf("SafeReturnTo(%q) = %q: holds byte %#x", in, got, c)
		}
	}
	u, err := url.Parse(got)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		t.Fatalf("SafeReturnTo(%q) = %q: parses as %#v, %v", in, got, u, err)
	}
	// Decoding once must not produce another origin either.
	if d, err := url.PathUnescape(got); err == nil && (strings.HasPrefix(d, "//") || strings.HasPrefix(d, `/\`)) {
		t.Fatalf("SafeReturnTo(%q) = %q: decodes to %q", in, got, d)
	}
	// Resolved against the gateway's origin, it stays there.
	base, _ := url.Parse("https://app.example/page")
	if r := base.ResolveReference(u); r.Host != "app.example" || r.Scheme != "https" {
		t.Fatalf("SafeReturnTo(%q) = %q resolves to %s", in, got, r)
	}
	if again := SafeReturnTo(got); again != got {
		t.Fatalf("SafeReturnTo(%q) = %q, but SafeReturnTo(%q) = %q", in, got, got, again)
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{
		"", "/", "/ok?x=1#y", "https://evil.example", "//evil.example", `/\evil.example`,
		"/%2F%2Fevil.example", "/%5Cevil.example", "\t//evil.example", "/\t/evil.example",
		"javascript:alert(1)", "http:/evil.example", "/.//evil.example", "/a\x00", "/a\r\nb",
		"/%zz", "/caf\u00e9", "/%252F%252Fevil.example", strings.Repeat("/", 1025),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkReturnTo(t, in, SafeReturnTo(in))
	})
}
