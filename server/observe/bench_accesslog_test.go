package observe

// BenchmarkAccessLog is one access-log line, as a GetOrder writes it: a
// backend call, the JSON handler the gateway logs with (to io.Discard),
// with the request id added from the context.
//
//	go test -run '^$' -bench AccessLog -benchmem ./server/observe/

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/telemetry"
)

func BenchmarkAccessLog(b *testing.B) {
	l := &accessLog{logger: slog.New(requestid.LogHandler(slog.NewJSONHandler(io.Discard, nil))), on: true}
	ctx := requestid.NewContext(context.Background(), "0123456789abcdefghij")
	call := &telemetry.Call{}
	call.SetSession("valid")
	call.AddBackend(telemetry.BackendCall{Backend: "orders", Method: "/acme.orders.v1.OrderService/GetOrder", Code: "ok", Duration: 1234 * time.Microsecond})
	spec := connect.Spec{Procedure: "/acme.storefront.v1.AccountService/GetOrder"}
	b.ReportAllocs()
	for b.Loop() {
		l.write(ctx, spec, call, 2345*time.Microsecond, nil)
	}
}
