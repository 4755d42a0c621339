// Command floor serves benchfloor's GetOrder and GetDashboard for the
// bench harness: the least a Connect gateway on Custodian's libraries does
// for those calls, in
// its own process so that its CPU per call is measured as the gateway's
// is. It prints one JSON line, {"listen":"127.0.0.1:PORT"}, once it
// listens, and serves until it is killed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/internal/benchfloor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "where to listen")
	var backends benchfloor.Backends
	flag.Func("backend", "a backend, `name=protocol@url`: name orders, profiles or loyalty; protocol connect, grpc or grpcweb (repeat for each)", func(v string) error {
		name, rest, _ := strings.Cut(v, "=")
		protocol, url, ok := strings.Cut(rest, "@")
		if !ok || url == "" {
			return fmt.Errorf("%q is not name=protocol@url", v)
		}
		b := benchfloor.Backend{URL: url}
		switch protocol {
		case "connect":
		case "grpc":
			b.Transport = []connecthttp.Option{connecthttp.WithGRPC()}
		case "grpcweb":
			b.Transport = []connecthttp.Option{connecthttp.WithGRPCWeb()}
		default:
			return fmt.Errorf("unknown protocol %q", protocol)
		}
		switch name {
		case "orders":
			backends.Orders = b
		case "profiles":
			backends.Profiles = b
		case "loyalty":
			backends.Loyalty = b
		default:
			return fmt.Errorf("unknown backend %q", name)
		}
		return nil
	})
	flag.Parse()
	if backends.Orders.URL == "" || backends.Profiles.URL == "" || backends.Loyalty.URL == "" {
		return fmt.Errorf("--backend is required for orders, profiles and loyalty")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"listen": ln.Addr().String()}); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           benchfloor.NewHandler(clients.NewHTTPClient(), backends),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return srv.Serve(ln)
}
