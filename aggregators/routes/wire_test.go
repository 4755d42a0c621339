package routes

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
)

// ticketBytes returns a backend GetTicketResponse whose ticket holds the
// encoded fields ticket, for hand-made answers.
func ticketBytes(t *testing.T, ticket []byte) []byte {
	t.Helper()
	num := backendResponse.Fields().ByName("ticket").Number()
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), ticket)
}

// ticketTag returns the tag of the backend Ticket field name.
func ticketTag(t *testing.T, name string, typ protowire.Type) []byte {
	t.Helper()
	fd := backendResponse.Fields().ByName("ticket").Message().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		t.Fatalf("backend Ticket has no field %s", name)
	}
	return protowire.AppendTag(nil, fd.Number(), typ)
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestToPublicWire checks answers whose decoding has pitfalls: merges,
// oneof members replaced by backend-only ones, packed and unpacked lists,
// map entries with missing or repeated parts, and wrong wire types (kept
// by protobuf as unknown fields). Each must give what proto.Unmarshal and
// ToPublic give.
func TestToPublicWire(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	withTarget := func(target any) []byte {
		res := &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{Id: "t1"}}
		switch v := target.(type) {
		case *backendv1.Ticket_Project:
			res.Ticket.Target = v
		case *backendv1.Ticket_InternalQueue:
			res.Ticket.Target = v
		}
		return marshal(t, res)
	}
	project := &backendv1.Ticket_Project{Project: &backendv1.Project{Id: "p1", Name: "Checkout"}}
	internal := &backendv1.Ticket_InternalQueue{InternalQueue: marker}
	tests := []struct {
		name string
		b    []byte
		want func(m *dynamicpb.Message) bool // an extra check on the public answer, if any
	}{
		{name: "empty", b: nil},
		{name: "canary", b: canaryBytes(t, nil)},
		{name: "canary twice merges", b: cat(canaryBytes(t, nil), canaryBytes(t, nil))},
		{name: "public member then backend-only member", b: cat(withTarget(project), withTarget(internal)),
			want: func(m *dynamicpb.Message) bool {
				ticket := m.Get(m.Descriptor().Fields().ByName("ticket")).Message()
				return ticket.WhichOneof(ticket.Descriptor().Oneofs().ByName("target")) == nil
			}},
		{name: "backend-only member then public member", b: cat(withTarget(internal), withTarget(project))},
		{name: "public member twice merges", b: cat(withTarget(project), withTarget(&backendv1.Ticket_Project{Project: &backendv1.Project{Name: "Other"}}))},
		{name: "unpacked repeated int64", b: ticketBytes(t, cat(ticketTag(t, "watcher_ids", protowire.VarintType), []byte{7}, ticketTag(t, "watcher_ids", protowire.VarintType), []byte{9}))},
		{name: "packed repeated int64", b: ticketBytes(t, cat(ticketTag(t, "watcher_ids", protowire.BytesType), []byte{3, 1, 0x80, 0x01}))},
		{name: "repeated enum with values the public enum lacks", b: ticketBytes(t, cat(ticketTag(t, "history", protowire.BytesType), []byte{4, 1, 2, 3, 99}))},
		{name: "map entry without key or value", b: ticketBytes(t, cat(ticketTag(t, "labels", protowire.BytesType), []byte{0}))},
		{name: "map entry with repeated key and unknown field", b: ticketBytes(t, cat(ticketTag(t, "labels", protowire.BytesType), []byte{11, 0x0a, 1, 'a', 0x0a, 1, 'b', 0x18, 5, 0x12, 1, 'v'}))},
		{name: "map entry key with wrong wire type", b: ticketBytes(t, cat(ticketTag(t, "labels", protowire.BytesType), []byte{4, 0x08, 1, 0x12, 0}))},
		{name: "map enum value the public enum lacks", b: ticketBytes(t, cat(ticketTag(t, "step_status", protowire.BytesType), []byte{4, 0x08, 2, 0x10, 99}))},
		{name: "string with varint wire type is unknown", b: ticketBytes(t, cat(ticketTag(t, "title", protowire.VarintType), []byte{1}))},
		{name: "message with fixed32 wire type is unknown", b: cat(protowire.AppendTag(nil, 1, protowire.Fixed32Type), []byte{1, 2, 3, 4})},
		{name: "unknown group", b: cat(protowire.AppendTag(nil, 999, protowire.StartGroupType), []byte{0x08, 1}, protowire.AppendTag(nil, 999, protowire.EndGroupType))},
		{name: "implicit zero after a value", b: ticketBytes(t, cat(ticketTag(t, "title", protowire.BytesType), []byte{1, 'x'}, ticketTag(t, "title", protowire.BytesType), []byte{0}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := dynamicpb.NewMessage(backendResponse)
			if err := proto.Unmarshal(tt.b, src); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			want := dynamicpb.NewMessage(webResponse)
			c.ToPublic(want, src)
			got := dynamicpb.NewMessage(webResponse)
			if err := c.ToPublicWire(got, tt.b); err != nil {
				t.Fatalf("ToPublicWire: %v", err)
			}
			if diff := cmpDiff(want, got); diff != "" {
				t.Errorf("ToPublicWire (-ToPublic +ToPublicWire):\n%s", diff)
			}
			if tt.want != nil && !tt.want(got) {
				t.Errorf("unexpected public answer: %v", got)
			}
		})
	}
}

// TestToPublicWireMalformed checks that bytes proto.Unmarshal refuses are
// refused, with an error and no panic.
func TestToPublicWireMalformed(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	// A chain of nested comments deeper than protobuf's recursion limit.
	comment := []byte{}
	replies := backendResponse.Fields().ByName("ticket").Message().Fields().ByName("comments").Message().Fields().ByName("replies").Number()
	for range protowire.DefaultRecursionLimit + 1 {
		comment = protowire.AppendBytes(protowire.AppendTag(nil, replies, protowire.BytesType), comment)
	}
	deep := ticketBytes(t, cat(ticketTag(t, "comments", protowire.BytesType), protowire.AppendVarint(nil, uint64(len(comment))), comment))
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "truncated tag", b: []byte{0x80}},
		{name: "truncated varint", b: ticketBytes(t, cat(ticketTag(t, "view_count", protowire.VarintType), []byte{0xff}))},
		{name: "truncated fixed64", b: ticketBytes(t, cat(ticketTag(t, "checksum", protowire.Fixed64Type), []byte{1, 2, 3}))},
		{name: "length past the end", b: []byte{0x0a, 0x05, 0x12, 0x01}},
		{name: "nested length past the end", b: ticketBytes(t, cat(ticketTag(t, "title", protowire.BytesType), []byte{9, 'x'}))},
		{name: "packed list with a truncated varint", b: ticketBytes(t, cat(ticketTag(t, "watcher_ids", protowire.BytesType), []byte{1, 0x80}))},
		{name: "invalid UTF-8 in a proto3 string", b: ticketBytes(t, cat(ticketTag(t, "title", protowire.BytesType), []byte{2, 0xff, 0xfe}))},
		{name: "invalid UTF-8 in a map key", b: ticketBytes(t, cat(ticketTag(t, "labels", protowire.BytesType), []byte{3, 0x0a, 1, 0xff}))},
		{name: "field number 0", b: []byte{0x02, 0x00}},
		{name: "end group without a start", b: protowire.AppendTag(nil, 5, protowire.EndGroupType)},
		{name: "unterminated group", b: cat(protowire.AppendTag(nil, 999, protowire.StartGroupType), []byte{0x08, 1})},
		{name: "reserved wire type", b: []byte{0x0e}},
		{name: "deeper than the recursion limit", b: deep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := proto.Unmarshal(tt.b, dynamicpb.NewMessage(backendResponse)); err == nil {
				t.Fatalf("proto.Unmarshal accepts %q: not a malformed input", tt.b)
			}
			if err := c.ToPublicWire(dynamicpb.NewMessage(webResponse), tt.b); err == nil {
				t.Errorf("ToPublicWire(%q) = nil error, want one", tt.b)
			}
		})
	}
}
