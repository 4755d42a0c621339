package custodian

import (
	"fmt"

	"connectrpc.com/connect/v2"
)

// Client returns a generated client for the configured backend named
// backend, for example
//
//	catalog, err := custodian.Client(gw, "catalog", catalogv1connect.NewCatalogServiceClient)
//
// Its calls carry that backend's protocol, token policy (the signed-in
// user's token, an exchanged or a client-credentials token, or none),
// timeout, circuit breaker, request id and trace context.
func Client[T any](g *Gateway, backend string, newClient func(*connect.Client) T) (T, error) {
	b, ok := g.backends[backend]
	if !ok {
		var zero T
		return zero, fmt.Errorf("custodian: no backend named %q is configured", backend)
	}
	return newClient(b.Client()), nil
}
