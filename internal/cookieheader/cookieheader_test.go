package cookieheader

import (
	"net/http"
	"strings"
	"testing"
)

// stdFirst is what net/http finds: the first cookie named name that accept
// takes.
func stdFirst(lines []string, name string, accept func(string) bool) (string, bool) {
	for _, c := range (&http.Request{Header: http.Header{"Cookie": lines}}).CookiesNamed(name) {
		if accept == nil || accept(c.Value) {
			return c.Value, true
		}
	}
	return "", false
}

func nonEmpty(v string) bool { return v != "" }

func TestFirst(t *testing.T) {
	t.Parallel()
	const name = "__Host-custodian"
	many := strings.Repeat("a=1; ", maxCookies) + name + "=v"
	tests := []struct {
		name   string
		lines  []string
		accept func(string) bool
		want   string
		ok     bool
	}{
		{name: "none", lines: nil},
		{name: "alone", lines: []string{name + "=abc"}, want: "abc", ok: true},
		{name: "among others", lines: []string{"theme=dark; " + name + "=abc; lang=fr"}, want: "abc", ok: true},
		{name: "second line", lines: []string{"theme=dark", " " + name + " = abc "}, want: " abc", ok: true},
		{name: "quoted", lines: []string{name + `="abc"`}, want: "abc", ok: true},
		{name: "empty value", lines: []string{name + "="}, want: "", ok: true},
		{name: "empty value skipped by accept", lines: []string{name + "=; " + name + "=x"}, accept: nonEmpty, want: "x", ok: true},
		{name: "bad byte skipped", lines: []string{name + "=a\\b; " + name + "=ok"}, want: "ok", ok: true},
		{name: "prefix of the name", lines: []string{name + "x=abc"}},
		{name: "name is a prefix", lines: []string{"__Host-custod=abc"}},
		{name: "case differs", lines: []string{strings.ToUpper(name) + "=abc"}},
		{name: "no equals", lines: []string{name}, want: "", ok: true},
		{name: "too many cookies", lines: []string{many}},
		{name: "control byte", lines: []string{name + "=a\x01b"}},
		{name: "non-ASCII", lines: []string{name + "=é"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := First(tt.lines, name, tt.accept)
			if got != tt.want || ok != tt.ok {
				t.Errorf("First = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
			stdGot, stdOK := stdFirst(tt.lines, name, tt.accept)
			if got != stdGot || ok != stdOK {
				t.Errorf("First = %q, %v; net/http finds %q, %v", got, ok, stdGot, stdOK)
			}
			if Has(tt.lines, name) != (stdOK || tt.accept != nil && len((&http.Request{Header: http.Header{"Cookie": tt.lines}}).CookiesNamed(name)) > 0) {
				t.Errorf("Has disagrees with net/http")
			}
		})
	}
}

// FuzzFirst checks that First finds what net/http's parser finds.
func FuzzFirst(f *testing.F) {
	for _, s := range []string{"s=abc", "a=b; s=c", ` s = "q" `, "s=\x7f; s=ok", "s;s=1", "s=a\"b", "=; s=", "s=\t"} {
		f.Add(s, "x=1", "s")
	}
	f.Fuzz(func(t *testing.T, line1, line2, name string) {
		if !validName(name) {
			return
		}
		for _, accept := range []func(string) bool{nil, nonEmpty} {
			lines := []string{line1, line2}
			got, ok := First(lines, name, accept)
			want, wantOK := stdFirst(lines, name, accept)
			if got != want || ok != wantOK {
				t.Fatalf("First(%q, %q) = %q, %v; net/http finds %q, %v", lines, name, got, ok, want, wantOK)
			}
		}
	})
}

// validName reports whether name is a token, as every cookie name this
// package is asked for is.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, b := range []byte(name) {
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return false
		}
	}
	return true
}

func TestFirstAllocatesNothing(t *testing.T) {
	lines := []string{"theme=dark; __Host-custodian=abcdefghijklmnop; lang=fr"}
	if n := testing.AllocsPerRun(100, func() { _, _ = First(lines, "__Host-custodian", nonEmpty) }); n != 0 {
		t.Errorf("First allocates %v times a call, want 0", n)
	}
}
