package custodian_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// installGrpcurl is how to get the grpcurl the tests use, as
// scripts/test.sh does.
const installGrpcurl = "GOBIN=$PWD/.build/bin GOFLAGS= go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 && export GRPCURL=$PWD/.build/bin/grpcurl"

// findGrpcurl returns the grpcurl to run: $GRPCURL, which must be an
// executable; without it, in CI (CI=true) an error, since scripts/test.sh
// installs grpcurl and names it there, and elsewhere grpcurl on PATH. The
// test fails, and never skips, when there is none.
func findGrpcurl(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if bin := getenv("GRPCURL"); bin != "" {
		path, err := lookPath(bin)
		if err != nil {
			return "", fmt.Errorf("$GRPCURL=%q is not an executable: %w; install it with %s", bin, err, installGrpcurl)
		}
		return path, nil
	}
	if getenv("CI") == "true" {
		return "", fmt.Errorf("$GRPCURL is not set in CI: scripts/test.sh installs grpcurl and names it in $GRPCURL (%s)", installGrpcurl)
	}
	path, err := lookPath("grpcurl")
	if err != nil {
		return "", fmt.Errorf("grpcurl is not installed: set $GRPCURL or put grpcurl on PATH (%s): %w", installGrpcurl, err)
	}
	return path, nil
}

func TestFindGrpcurl(t *testing.T) {
	t.Parallel()
	const installed = "/opt/bin/grpcurl"
	lookPath := func(file string) (string, error) {
		switch file {
		case installed:
			return installed, nil
		case "grpcurl":
			return "/usr/bin/grpcurl", nil
		}
		return "", exec.ErrNotFound
	}
	notOnPath := func(file string) (string, error) {
		if file == installed {
			return installed, nil
		}
		return "", exec.ErrNotFound
	}
	cases := []struct {
		name     string
		env      map[string]string
		lookPath func(string) (string, error)
		want     string // "" for an error
	}{
		{"CI with $GRPCURL", map[string]string{"CI": "true", "GRPCURL": installed}, lookPath, installed},
		{"CI without $GRPCURL, though grpcurl is on PATH", map[string]string{"CI": "true"}, lookPath, ""},
		{"CI with $GRPCURL not executable", map[string]string{"CI": "true", "GRPCURL": "/tmp/not-grpcurl"}, lookPath, ""},
		{"locally with $GRPCURL", map[string]string{"GRPCURL": installed}, notOnPath, installed},
		{"locally with $GRPCURL not executable", map[string]string{"GRPCURL": "/tmp/not-grpcurl"}, lookPath, ""},
		{"locally, grpcurl on PATH", nil, lookPath, "/usr/bin/grpcurl"},
		{"locally, no grpcurl", nil, notOnPath, ""},
		{"CI=false counts as locally", map[string]string{"CI": "false"}, lookPath, "/usr/bin/grpcurl"},
	}
	for _, c := range cases {
		got, err := findGrpcurl(func(k string) string { return c.env[k] }, c.lookPath)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: found %q, want an error", c.name, got)
			} else if !strings.Contains(err.Error(), "go install github.com/fullstorydev/grpcurl") {
				t.Errorf("%s: error %q does not say how to install grpcurl", c.name, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := findGrpcurl(func(string) string { return "" }, notOnPath); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("the lookup's error is not wrapped: %v", err)
	}
}

// TestGrpcurl drives the gateway with grpcurl, as an operator would: listing
// and describing services through reflection and calling methods. The test
// script installs grpcurl and names it in $GRPCURL.
func TestGrpcurl(t *testing.T) {
	t.Parallel()
	bin, err := findGrpcurl(os.Getenv, exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	e := gt.NewDemoEnv(t)
	addr := strings.TrimPrefix(e.Listen, "http://")
	// Each case is grpcurl's flags, then the address, then the verb or method.
	cases := []struct {
		name  string
		flags []string
		args  []string
		want  []string
		deny  []string
	}{
		{"list", nil, []string{"list"}, []string{
			"acme.storefront.v1.AccountService", "acme.storefront.v1.ProductService",
			"custodian.v1.SessionService", "grpc.health.v1.Health",
		}, []string{"acme.catalog", "acme.orders", "acme.profiles", "acme.loyalty"}},
		{"describe", nil, []string{"describe", "acme.storefront.v1.ProductService"}, []string{"rpc ListProducts", "rpc GetProduct", "NO_SIDE_EFFECTS"}, nil},
		{"describe message", nil, []string{"describe", "acme.storefront.v1.Product"}, []string{"image_url", "price"}, []string{"cost", "supplier"}},
		{"call", []string{"-d", `{"page_size": 2}`}, []string{"acme.storefront.v1.ProductService/ListProducts"}, []string{`"productId": "p-0001"`, "nextPageToken"}, []string{"supplier"}},
		{"health", nil, []string{"grpc.health.v1.Health/Check"}, []string{`"status": "SERVING"`}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-plaintext", "-max-time", "20"}, c.flags...)
			args = append(append(args, addr), c.args...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("grpcurl %v: %v\n%s", c.args, err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("grpcurl %v: output lacks %q:\n%s", c.args, w, out)
				}
			}
			for _, d := range c.deny {
				if strings.Contains(string(out), d) {
					t.Errorf("grpcurl %v: output contains %q:\n%s", c.args, d, out)
				}
			}
		})
	}
}
