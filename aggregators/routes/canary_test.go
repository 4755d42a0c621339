package routes

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// markUnknown gives every message in m unknown fields that carry the
// marker: one with a number no schema uses, and one with the number of a
// public field its backend type does not have, whose bytes would decode as
// that public field if backend bytes were ever decoded into public types.
func markUnknown(m protoreflect.Message) {
	walk(m, func(m protoreflect.Message) {
		var raw []byte
		raw = protowire.AppendTag(raw, 4242, protowire.BytesType)
		raw = protowire.AppendString(raw, marker)
		if m.Descriptor().FullName() == "routestest.backend.v1.Ticket" {
			// web.v1.Ticket's project is 31: a Project whose name is the marker.
			var project []byte
			project = protowire.AppendTag(project, 2, protowire.BytesType)
			project = protowire.AppendString(project, marker)
			raw = protowire.AppendTag(raw, 31, protowire.BytesType)
			raw = protowire.AppendBytes(raw, project)
		}
		m.SetUnknown(append(m.GetUnknown(), raw...))
	})
}

// canaryBytes is the wire form of backendTicket with unknown fields at every
// level and appended to the whole answer.
func canaryBytes(t testing.TB, mutate func(*backendv1.GetTicketResponse)) []byte {
	t.Helper()
	res := backendTicket()
	if mutate != nil {
		mutate(res)
	}
	markUnknown(res.ProtoReflect())
	b, err := proto.Marshal(res)
	if err != nil {
		t.Fatalf("marshal canary: %v", err)
	}
	b = protowire.AppendTag(b, 9999, protowire.BytesType)
	b = protowire.AppendString(b, marker)
	// GetTicketResponse.ticket is 1 on both sides: a second, unknown-laden
	// occurrence of it is merged into the first by the decoder.
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendString(protowire.AppendTag(nil, 4243, protowire.BytesType), marker))
	if !bytes.Contains(b, []byte(marker)) {
		t.Fatal("canary bytes carry no marker")
	}
	return b
}

func TestCanary(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	tests := []struct {
		name   string
		mutate func(*backendv1.GetTicketResponse)
		want   func(*webv1.GetTicketResponse)
	}{
		{name: "public oneof member"},
		{
			name: "internal oneof member",
			mutate: func(res *backendv1.GetTicketResponse) {
				res.Ticket.Target = &backendv1.Ticket_InternalQueue{InternalQueue: marker}
			},
			want: func(res *webv1.GetTicketResponse) { res.Ticket.Target = nil },
		},
		{
			name: "team oneof member and presence",
			mutate: func(res *backendv1.GetTicketResponse) {
				res.Ticket.Target = &backendv1.Ticket_Team{Team: &backendv1.Team{Id: "team-1", Name: "Payments",
					Members: []*backendv1.User{backendUser("m1"), backendUser("m2")}, PagerWebhook: marker}}
				res.Ticket.StoryPoints = nil
				res.Ticket.Archived = proto.Bool(false)
				res.Ticket.ExternalRef = nil
			},
			want: func(res *webv1.GetTicketResponse) {
				res.Ticket.Target = &webv1.Ticket_Team{Team: &webv1.Team{Id: "team-1", Name: "Payments",
					Members: []*webv1.User{webUser("m1"), webUser("m2")}}}
				res.Ticket.StoryPoints = nil
				res.Ticket.Archived = proto.Bool(false)
				res.Ticket.ExternalRef = nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := canaryBytes(t, tt.mutate)
			src := decodeDynamic(t, backendResponse, raw)
			if len(src.GetUnknown()) == 0 {
				t.Fatal("decoded backend answer has no unknown fields: the canary is not exercised")
			}
			dst := dynamicpb.NewMessage(webResponse)
			c.ToPublic(dst, src)
			// The wire path, straight from the backend's bytes, gives the same.
			fromWire := dynamicpb.NewMessage(webResponse)
			if err := c.ToPublicWire(fromWire, raw); err != nil {
				t.Fatalf("ToPublicWire: %v", err)
			}
			if diff := cmpDiff(dst.Interface(), fromWire.Interface()); diff != "" {
				t.Errorf("ToPublicWire differs from ToPublic (-ToPublic +ToPublicWire):\n%s", diff)
			}

			bin, err := proto.Marshal(dst)
			if err != nil {
				t.Fatalf("marshal public answer: %v", err)
			}
			js, err := protojson.Marshal(dst)
			if err != nil {
				t.Fatalf("marshal public answer as JSON: %v", err)
			}
			for format, body := range map[string][]byte{"binary": bin, "JSON": js} {
				if n := bytes.Count(body, []byte(marker)); n > 0 {
					t.Errorf("%s public answer carries the marker %d times: %q", format, n, body)
				}
			}
			if problems := undeclared(dst); len(problems) > 0 {
				t.Errorf("public answer holds what its schema does not declare:\n%s", strings.Join(problems, "\n"))
			}

			got := convert(t, dst, &webv1.GetTicketResponse{})
			want := webTicket()
			if tt.want != nil {
				tt.want(want)
			}
			if diff := cmpDiff(want, got); diff != "" {
				t.Errorf("public answer (-want +got):\n%s", diff)
			}
			// Presence, read from the public bytes by a browser's decoder.
			ticket := got.GetTicket()
			if ticket.StoryPoints != nil != (want.Ticket.StoryPoints != nil) || ticket.Archived != nil != (want.Ticket.Archived != nil) ||
				ticket.ExternalRef != nil != (want.Ticket.ExternalRef != nil) {
				t.Errorf("presence not kept: story_points %v, archived %v, external_ref %v", ticket.StoryPoints, ticket.Archived, ticket.ExternalRef)
			}
		})
	}
}

// cmpDiff returns both messages as text unless they are equal, presence
// and oneof members included.
func cmpDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return "- " + prototext.Format(want) + "\n+ " + prototext.Format(got)
}
