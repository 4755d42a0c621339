package server

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect/v2/connectgzip"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custodian-bff/custodian/internal/jsonenc"
)

// maxNesting bounds how deeply nested a request message may be. The
// gateway's public messages nest a few levels; protobuf's default (10000)
// lets a small hostile request cost deep recursion.
const maxNesting = 32

// codecs returns the handler codecs: connect-go's binary and JSON codecs
// with a nesting limit on what they decode, JSON answers written by jsonenc
// (about half protojson's CPU, without its per-field allocations), the kept
// encodings of shared answers (Share) written as they are, and gzip at its
// fastest level
// (answers are small; level 6 cost three times the CPU for a few percent).
func codecs() []connecthttp.Option {
	binary := connectproto.NewBinaryCodec()
	binary.UnmarshalOptions.RecursionLimit = maxNesting
	json := connectproto.NewJSONCodec()
	// Unknown fields are dropped, as connect-go does, so clients and the
	// gateway need not share one schema version.
	json.UnmarshalOptions.DiscardUnknown = true
	json.UnmarshalOptions.RecursionLimit = maxNesting
	return []connecthttp.Option{
		connecthttp.WithCompressors(connectgzip.New(connectgzip.WithLevel(gzip.BestSpeed))),
		connecthttp.WithCodecs(sharedCodec{protoCodec{binary}}, sharedCodec{jsonenc.Codec{JSONCodec: json}}),
	}
}

// protoCodec is connect-go's binary codec that also bounds the nesting of
// unknown groups.
type protoCodec struct{ *connectproto.BinaryCodec }

func (c protoCodec) UnmarshalRead(ctx context.Context, src io.Reader, m any) error {
	if err := c.BinaryCodec.UnmarshalRead(ctx, src, m); err != nil {
		return err
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return connectproto.ErrNotProtoMessage
	}
	// RecursionLimit does not cover unknown groups, which protobuf skips
	// with its own limit of 10000: count them too.
	if err := checkUnknownNesting(msg.ProtoReflect(), 0); err != nil {
		return fmt.Errorf("unmarshal: %w", err)
	}
	return nil
}

var errTooDeep = errors.New("message nested too deeply")

// checkUnknownNesting refuses a decoded message whose unknown fields hold
// groups that, at the message's depth, nest deeper than maxNesting.
func checkUnknownNesting(m protoreflect.Message, depth int) error {
	if depth+groupDepth(m.GetUnknown()) > maxNesting {
		return errTooDeep
	}
	var err error
	check := func(v protoreflect.Value) bool {
		err = checkUnknownNesting(v.Message(), depth+1)
		return err == nil
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { return check(mv) })
			}
		case fd.Message() == nil:
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				check(v.List().Get(i))
			}
		default:
			check(v)
		}
		return err == nil
	})
	return err
}

// groupDepth returns how deeply the groups among the raw fields b nest,
// walking them without recursion.
func groupDepth(b []byte) int {
	depth, deepest := 0, 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return deepest
		}
		b = b[n:]
		switch typ {
		case protowire.StartGroupType:
			depth++
			deepest = max(deepest, depth)
			continue
		case protowire.EndGroupType:
			depth--
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return deepest
		}
		b = b[n:]
	}
	return deepest
}
