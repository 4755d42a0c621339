package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxNesting bounds how deeply nested a request message may be. The
// gateway's public messages nest a few levels; protobuf's default (10000)
// lets a small hostile request cost deep recursion.
const maxNesting = 32

var errNotProto = errors.New("not a protobuf message")

// codecs returns the handler codecs: connect-go's binary and JSON codecs
// with a nesting limit on what they decode, and gzip at its fastest level
// (answers are small; level 6 cost three times the CPU for a few percent).
func codecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &gzip.Reader{} },
			func() connect.Compressor {
				w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // fails only for an invalid level
				return w
			},
		),
		connect.WithCodec(protoCodec{}),
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
	}
}

type protoCodec struct{}

func (protoCodec) Name() string   { return "proto" }
func (protoCodec) IsBinary() bool { return true }

func (protoCodec) Marshal(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return proto.Marshal(msg)
}

func (protoCodec) MarshalStable(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

func (protoCodec) Unmarshal(data []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return errNotProto
	}
	if err := (proto.UnmarshalOptions{RecursionLimit: maxNesting}).Unmarshal(data, msg); err != nil {
		return fmt.Errorf("unmarshal: %w", err)
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

type jsonCodec struct{ name string }

func (c jsonCodec) Name() string { return c.name }
func (jsonCodec) IsBinary() bool { return false }

func (jsonCodec) Marshal(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return protojson.Marshal(msg)
}

func (c jsonCodec) MarshalStable(m any) ([]byte, error) {
	b, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (jsonCodec) Unmarshal(data []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return errNotProto
	}
	if len(data) == 0 {
		return errors.New("empty payload is not a JSON object")
	}
	// Unknown fields are dropped, as connect-go does, so clients and the
	// gateway need not share one schema version.
	opts := protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: maxNesting}
	if err := opts.Unmarshal(data, msg); err != nil {
		return fmt.Errorf("unmarshal: %w", err)
	}
	return nil
}
