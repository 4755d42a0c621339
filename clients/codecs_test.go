package clients_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2/connectproto"

	"github.com/custodian-bff/custodian/clients"
)

// countingCodec is connect-go's binary codec, counting its uses.
type countingCodec struct {
	*connectproto.BinaryCodec
	marshals, unmarshals atomic.Int32
}

func (c *countingCodec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	c.marshals.Add(1)
	return c.BinaryCodec.MarshalWrite(ctx, dst, msg)
}

func (c *countingCodec) UnmarshalRead(ctx context.Context, src io.Reader, msg any) error {
	c.unmarshals.Add(1)
	return c.BinaryCodec.UnmarshalRead(ctx, src, msg)
}

// TestWithCodecs checks that a codec given by WithCodecs replaces the
// default of its name for every protocol, requests still going out as
// binary protobuf.
func TestWithCodecs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		protocol    clients.Protocol
		contentType string
	}{
		{"connect", clients.ProtocolConnect, "application/proto"},
		{"grpc", clients.ProtocolGRPC, "application/grpc"},
		{"grpc-web", clients.ProtocolGRPCWeb, "application/grpc-web+proto"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			catalog, url := startCatalog(t)
			codec := &countingCodec{BinaryCodec: connectproto.NewBinaryCodec()}
			spec := clients.Spec{Name: "catalog", URL: url, Protocol: c.protocol, Token: clients.TokenNone}
			if err := call(context.Background(), t, spec, "p-1", clients.WithCodecs(codec)); err != nil {
				t.Fatal(err)
			}
			if m, u := codec.marshals.Load(), codec.unmarshals.Load(); m != 1 || u != 1 {
				t.Errorf("codec marshalled %d and unmarshalled %d messages, want 1 and 1", m, u)
			}
			if got := catalog.lastHeader().Get("Content-Type"); got != c.contentType {
				t.Errorf("content type %q, want %q", got, c.contentType)
			}
		})
	}
}
