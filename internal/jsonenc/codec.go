package jsonenc

import (
	"context"
	"errors"
	"io"

	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
)

// Codec is connect-go's JSON codec that writes messages with AppendMessage,
// into the destination's free buffer when it has one; what AppendMessage
// leaves to protojson, and every decode, go to the JSON codec.
type Codec struct{ *connectproto.JSONCodec }

func (c Codec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return c.JSONCodec.MarshalWrite(ctx, dst, msg)
	}
	var buf []byte
	if ab, ok := dst.(interface{ AvailableBuffer() []byte }); ok {
		buf = ab.AvailableBuffer()
	}
	out, err := AppendMessage(buf, m)
	if errors.Is(err, ErrUnsupported) {
		return c.JSONCodec.MarshalWrite(ctx, dst, msg)
	}
	if err != nil {
		return err
	}
	_, err = dst.Write(out)
	return err
}
