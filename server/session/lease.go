package session

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseHeld is returned by [Leaser.Lease] while another holder has the
// lease.
var ErrLeaseHeld = errors.New("session: lease held elsewhere")

// Leaser is implemented by stores that several gateway replicas share. The
// manager takes a session's lease before it refreshes or exchanges that
// session's tokens, so that one refresh token is presented once across the
// whole cluster, however many replicas need new tokens at once.
type Leaser interface {
	// Lease takes the lease named name for ttl and returns it, or
	// ErrLeaseHeld at once when another holder has it. A holder that dies
	// keeps it at most ttl.
	Lease(ctx context.Context, name string, ttl time.Duration) (Lease, error)
}

// Lease is a held lease.
type Lease interface {
	// Renew extends the lease to ttl from now; it fails when the lease was
	// lost (expired and taken by another holder).
	Renew(ctx context.Context) error
	// Release gives the lease up, if it is still held.
	Release(ctx context.Context) error
}

// Pinger is implemented by stores that can be unreachable (a network
// store). The gateway reports itself not ready while Ping fails.
type Pinger interface {
	Ping(ctx context.Context) error
}
