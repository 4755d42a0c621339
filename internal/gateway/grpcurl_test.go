package gateway_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGrpcurl drives the gateway with grpcurl, as an operator would: listing
// and describing services through reflection and calling methods. The test
// script installs grpcurl and names it in $GRPCURL.
func TestGrpcurl(t *testing.T) {
	t.Parallel()
	bin := os.Getenv("GRPCURL")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("grpcurl"); err != nil {
			t.Skip("grpcurl is not installed; scripts/test.sh installs it")
		}
	}
	g := startDemo(t)
	addr := strings.TrimPrefix(g.url, "http://")
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
