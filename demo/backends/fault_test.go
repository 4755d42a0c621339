package backends_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/custodian-bff/custodian/demo/backends"
)

func TestFaultCode(t *testing.T) {
	t.Parallel()
	codes := []connect.Code{
		connect.CodeUnavailable,
		connect.CodeInternal,
		connect.CodeUnauthenticated, // a backend rejecting a good token
		connect.CodePermissionDenied,
		connect.CodeResourceExhausted,
	}
	for _, pr := range probes() {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel()
			idp := newTestIDP(t)
			set := startSet(t, idp)
			b := pr.backend(set)
			header := "Bearer " + idp.token(t, "alice", b.Audience())
			calls := int64(0)
			for _, p := range protocols(t) {
				c := newClients(set, p)
				for _, code := range codes {
					b.SetFault(backends.Fault{Code: code})
					err := pr.call(t.Context(), c, header, true)
					calls++
					if connect.CodeOf(err) != code {
						t.Fatalf("%s: with Fault{Code: %v}: got %v, want %v", p.name, code, err, code)
					}
					if msg := errorMessage(err); !strings.Contains(msg, ".acme.internal") {
						t.Errorf("%s: fault message %q doesn't look internal", p.name, msg)
					}
				}
				b.SetFault(backends.Fault{})
				if err := pr.call(t.Context(), c, header, true); err != nil {
					t.Fatalf("%s: after Fault{}: %v", p.name, err)
				}
				calls++
			}
			// Every authenticated call reached the backend, faulted or not.
			if n := b.Calls(pr.procedure); n != calls {
				t.Errorf("Calls(%q) = %d, want %d", pr.procedure, n, calls)
			}
		})
	}
}

func TestFaultDelay(t *testing.T) {
	t.Parallel()
	for _, pr := range probes() {
		for i, p := range protocols(t) {
			t.Run(pr.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				idp := newTestIDP(t)
				set := startSet(t, idp)
				p := protocols(t)[i] // closed before the Set, so Close needn't wait for idle HTTP/2 clients
				b := pr.backend(set)
				c := newClients(set, p)
				header := "Bearer " + idp.token(t, "alice", b.Audience())

				// Far longer than any test may run: only the caller's deadline
				// can end the call. Closing the Set at cleanup then proves the
				// handler gave up too, or Close would time out.
				b.SetFault(backends.Fault{Delay: time.Hour})
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				defer cancel()
				err := pr.call(ctx, c, header, true)
				wantCode(t, err, connect.CodeDeadlineExceeded)

				// A delay followed by a code answers with the code.
				b.SetFault(backends.Fault{Delay: time.Millisecond, Code: connect.CodeUnavailable})
				err = pr.call(t.Context(), c, header, true)
				wantCode(t, err, connect.CodeUnavailable)

				// Cleared, the same backend answers at once.
				b.SetFault(backends.Fault{})
				err = pr.call(t.Context(), c, header, true)
				wantCode(t, err, 0)
			})
		}
	}
}
