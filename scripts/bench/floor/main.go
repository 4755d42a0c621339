// Command floor serves benchfloor's GetOrder for the bench harness: the
// least a Connect gateway on Custodian's libraries does for that call, in
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
	orders := flag.String("orders", "", "the orders backend's URL")
	protocol := flag.String("protocol", "connect", "the orders backend's protocol: connect, grpc or grpcweb")
	flag.Parse()
	var transport []connecthttp.Option
	switch *protocol {
	case "connect":
	case "grpc":
		transport = append(transport, connecthttp.WithGRPC())
	case "grpcweb":
		transport = append(transport, connecthttp.WithGRPCWeb())
	default:
		return fmt.Errorf("unknown protocol %q", *protocol)
	}
	if *orders == "" {
		return fmt.Errorf("--orders is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"listen": ln.Addr().String()}); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           benchfloor.NewHandler(clients.NewHTTPClient(), *orders, transport...),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return srv.Serve(ln)
}
