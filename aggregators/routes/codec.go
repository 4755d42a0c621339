package routes

import (
	"bytes"
	"context"
	"io"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
)

// rawAnswer receives a backend answer as its binary encoding, for
// [Copier.ToPublicWire]: a route never builds the backend message.
type rawAnswer struct {
	b []byte
}

// backendCodec is connect-go's binary protobuf codec, except that it reads
// a *rawAnswer's bytes as they come.
type backendCodec struct {
	*connectproto.BinaryCodec
}

// BackendCodec returns the binary protobuf codec ("proto") that backend
// clients must use for routes: it is connect-go's own for every message,
// and it hands a route the bytes of a backend answer undecoded, so the
// route builds the public answer straight from them ([Copier.ToPublicWire])
// instead of decoding a dynamic backend message first, which costs more
// than the rest of the route.
func BackendCodec() connect.Codec {
	return backendCodec{connectproto.NewBinaryCodec()}
}

// UnmarshalRead reads src into a *rawAnswer, reusing its buffer, and
// decodes any other message as connect-go's binary codec does.
func (c backendCodec) UnmarshalRead(ctx context.Context, src io.Reader, msg any) error {
	raw, ok := msg.(*rawAnswer)
	if !ok {
		return c.BinaryCodec.UnmarshalRead(ctx, src, msg)
	}
	buf := bytes.NewBuffer(raw.b[:0])
	_, err := buf.ReadFrom(src)
	raw.b = buf.Bytes()
	return err
}
