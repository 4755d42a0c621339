package custodian

import "testing"

func TestTracesURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, endpoint, want string }{
		{"base URL", "http://collector:4318", "http://collector:4318/v1/traces"},
		{"base URL with slash", "https://collector.example.com/", "https://collector.example.com/v1/traces"},
		{"full URL", "http://collector:4318/v1/traces", "http://collector:4318/v1/traces"},
		{"other path", "https://gw.example.com/otlp/v1/traces", "https://gw.example.com/otlp/v1/traces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := tracesURL(c.endpoint); got != c.want {
				t.Errorf("tracesURL(%q) = %q, want %q", c.endpoint, got, c.want)
			}
		})
	}
}
