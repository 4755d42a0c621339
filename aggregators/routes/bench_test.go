package routes

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// The hand-written copy below is what an aggregator written in Go does for
// the same answer, in the style of aggregators/storefront/mapping.go: the
// baseline of BenchmarkCopy.

func handResponse(r *backendv1.GetTicketResponse) *webv1.GetTicketResponse {
	return &webv1.GetTicketResponse{Ticket: handTicket(r.GetTicket())}
}

func handTicket(t *backendv1.Ticket) *webv1.Ticket {
	if t == nil {
		return nil
	}
	p := &webv1.Ticket{
		Id:                  t.GetId(),
		Title:               t.GetTitle(),
		Description:         t.GetDescription(),
		Status:              handStatus(t.GetStatus()),
		Priority:            handPriority(t.GetPriority()),
		CreateTime:          handTimestamp(t.GetCreateTime()),
		UpdateTime:          handTimestamp(t.GetUpdateTime()),
		TimeToFirstResponse: handDuration(t.GetTimeToFirstResponse()),
		Reporter:            handUser(t.GetReporter()),
		Assignee:            handUser(t.GetAssignee()),
		Comments:            handComments(t.GetComments()),
		StoryPoints:         t.StoryPoints,
		Archived:            t.Archived,
		ViewCount:           t.GetViewCount(),
		SlaHours:            t.GetSlaHours(),
		Satisfaction:        t.GetSatisfaction(),
		Etag:                bytes.Clone(t.GetEtag()),
		Revision:            t.GetRevision(),
		WatcherIds:          append([]int64(nil), t.GetWatcherIds()...),
		Checksum:            t.GetChecksum(),
		PriorityDelta:       t.GetPriorityDelta(),
	}
	if len(t.GetTags()) > 0 {
		p.Tags = append([]string(nil), t.GetTags()...)
	}
	if len(t.GetLabels()) > 0 {
		p.Labels = make(map[string]string, len(t.GetLabels()))
		for k, v := range t.GetLabels() {
			p.Labels[k] = v
		}
	}
	if len(t.GetAttachments()) > 0 {
		p.Attachments = make(map[string]*webv1.Attachment, len(t.GetAttachments()))
		for k, a := range t.GetAttachments() {
			p.Attachments[k] = &webv1.Attachment{Name: a.GetName(), SizeBytes: a.GetSizeBytes(), ContentType: a.GetContentType()}
		}
	}
	for _, s := range t.GetHistory() {
		p.History = append(p.History, handStatus(s))
	}
	if r := t.GetExternalRef(); r != nil {
		p.ExternalRef = &wrapperspb.StringValue{Value: r.GetValue()}
	}
	if m := t.GetUpdatedFields(); m != nil {
		p.UpdatedFields = &fieldmaskpb.FieldMask{Paths: append([]string(nil), m.GetPaths()...)}
	}
	switch target := t.GetTarget().(type) {
	case *backendv1.Ticket_Project:
		p.Target = &webv1.Ticket_Project{Project: &webv1.Project{Id: target.Project.GetId(), Name: target.Project.GetName()}}
	case *backendv1.Ticket_Team:
		team := &webv1.Team{Id: target.Team.GetId(), Name: target.Team.GetName()}
		for _, u := range target.Team.GetMembers() {
			team.Members = append(team.Members, handUser(u))
		}
		p.Target = &webv1.Ticket_Team{Team: team}
	}
	if len(t.GetStepStatus()) > 0 {
		p.StepStatus = make(map[int32]webv1.Status, len(t.GetStepStatus()))
		for k, s := range t.GetStepStatus() {
			p.StepStatus[k] = handStatus(s)
		}
	}
	return p
}

func handStatus(s backendv1.Status) webv1.Status {
	if _, ok := webv1.Status_name[int32(s)]; ok {
		return webv1.Status(s)
	}
	return webv1.Status_STATUS_UNSPECIFIED
}

func handPriority(p backendv1.Priority) webv1.Priority {
	if _, ok := webv1.Priority_name[int32(p)]; ok {
		return webv1.Priority(p)
	}
	return webv1.Priority_PRIORITY_UNSPECIFIED
}

func handTimestamp(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}

func handDuration(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return &durationpb.Duration{Seconds: d.GetSeconds(), Nanos: d.GetNanos()}
}

func handUser(u *backendv1.User) *webv1.User {
	if u == nil {
		return nil
	}
	return &webv1.User{Id: u.GetId(), DisplayName: u.GetDisplayName(), AvatarUrl: u.GetAvatarUrl()}
}

func handComments(cs []*backendv1.Comment) []*webv1.Comment {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*webv1.Comment, len(cs))
	for i, c := range cs {
		out[i] = &webv1.Comment{Id: c.GetId(), Author: handUser(c.GetAuthor()), Body: c.GetBody(),
			CreateTime: handTimestamp(c.GetCreateTime()), Replies: handComments(c.GetReplies())}
	}
	return out
}

// TestHandWrittenCopy checks that the benchmarks' baseline does the same
// work as the copier.
func TestHandWrittenCopy(t *testing.T) {
	t.Parallel()
	if got, want := handResponse(backendTicket()), webTicket(); !proto.Equal(got, want) {
		t.Errorf("hand-written copy (-want +got):\n%s", cmpDiff(want, got))
	}
}

// BenchmarkCopy measures the copy of a realistic answer: a 30-field public
// ticket with nested messages, repeated fields, maps, a oneof and well-known
// types (backendTicket: 8 comments, 6 tags, 4 labels, 2 attachments, ...),
// out of a backend ticket with internal fields at every level.
//
//   - ToPublic/dynamic is what a config-only route does: both messages are
//     dynamicpb messages of descriptors loaded at start.
//   - ToPublic/generated is the copier between generated types.
//   - HandWritten/generated is the Go an aggregator would have.
//   - Route/* add decoding the backend's bytes and encoding the public
//     answer, the rest of a route's per-message work; Route/wire builds the
//     public answer straight from the bytes (ToPublicWire), as routes do.
func BenchmarkCopy(b *testing.B) {
	c := responseCopier(b)
	src := backendTicket()
	wire, err := proto.Marshal(src)
	if err != nil {
		b.Fatal(err)
	}
	dynSrc := decodeDynamic(b, backendResponse, wire)

	b.Run("ToPublic/dynamic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ToPublic(dynamicpb.NewMessage(webResponse), dynSrc)
		}
	})
	b.Run("ToPublic/generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ToPublic((&webv1.GetTicketResponse{}).ProtoReflect(), src.ProtoReflect())
		}
	})
	b.Run("HandWritten/generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			handResponse(src)
		}
	})
	b.Run("Route/dynamic", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			in := dynamicpb.NewMessage(backendResponse)
			if err := proto.Unmarshal(wire, in); err != nil {
				b.Fatal(err)
			}
			out := dynamicpb.NewMessage(webResponse)
			c.ToPublic(out, in)
			if _, err := proto.Marshal(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Route/wire", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			out := dynamicpb.NewMessage(webResponse)
			if err := c.ToPublicWire(out, wire); err != nil {
				b.Fatal(err)
			}
			if _, err := proto.Marshal(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Route/hand-written", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			in := &backendv1.GetTicketResponse{}
			if err := proto.Unmarshal(wire, in); err != nil {
				b.Fatal(err)
			}
			if _, err := proto.Marshal(handResponse(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
