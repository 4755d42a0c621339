package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/custodian-bff/custodian/server/config"
)

// FuzzParse checks that no input makes Parse panic, and that every failure
// comes with a message.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte(fullYAML))
	f.Add([]byte(""))
	f.Add([]byte("~"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("public_url: [unclosed"))
	f.Add([]byte("server: {read_timeout: 2x, max_header_bytes: lots, foo: 1}"))
	f.Add([]byte("backends: [{name: a, url: 'http://[::1'}, {name: a, timeout: 5}]"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("session: {redis_url: \"redis://:%zz@h\", store: redis}"))
	if example, err := os.ReadFile(filepath.Join("..", "..", "docs", "custodian.example.yaml")); err == nil {
		f.Add(example)
	}
	env := envFunc(testEnv())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, dir, env)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error with an empty message")
			}
			if cfg != nil {
				t.Fatal("both a config and an error")
			}
			return
		}
		if cfg == nil {
			t.Fatal("neither a config nor an error")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", err)
		}
	})
}
