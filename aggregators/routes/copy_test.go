package routes

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// TestToPublic copies the test answers between every combination of
// generated and dynamic messages: the gateway copies dynamic ones, and the
// benchmarks compare with generated ones.
func TestToPublic(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	tests := []struct {
		name string
		src  *backendv1.GetTicketResponse
		want *webv1.GetTicketResponse
	}{
		{name: "empty", src: &backendv1.GetTicketResponse{}, want: &webv1.GetTicketResponse{}},
		{name: "internal fields only", src: &backendv1.GetTicketResponse{DebugTrace: marker}, want: &webv1.GetTicketResponse{}},
		{name: "empty ticket", src: &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{}}, want: &webv1.GetTicketResponse{Ticket: &webv1.Ticket{}}},
		{name: "full ticket", src: backendTicket(), want: webTicket()},
		{
			name: "explicit presence of zero values",
			src: &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{
				StoryPoints: proto.Int32(0), Archived: proto.Bool(false), Etag: []byte{},
				Target: &backendv1.Ticket_Project{Project: &backendv1.Project{}},
			}},
			want: &webv1.GetTicketResponse{Ticket: &webv1.Ticket{
				StoryPoints: proto.Int32(0), Archived: proto.Bool(false),
				Target: &webv1.Ticket_Project{Project: &webv1.Project{}},
			}},
		},
		{
			name: "enum numbers the public enums lack",
			src: &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{
				Status: backendv1.Status_STATUS_CLOSED, Priority: backendv1.Priority_PRIORITY_P0_INCIDENT,
				History:    []backendv1.Status{9, 3, -1, 1 << 20},
				StepStatus: map[int32]backendv1.Status{-5: 2, 0: 9},
			}},
			want: &webv1.GetTicketResponse{Ticket: &webv1.Ticket{
				Status:     webv1.Status_STATUS_CLOSED,
				History:    []webv1.Status{0, 3, 0, 0},
				StepStatus: map[int32]webv1.Status{-5: 2, 0: 0},
			}},
		},
		{
			name: "internal oneof member",
			src:  &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{Target: &backendv1.Ticket_InternalQueue{InternalQueue: marker}}},
			want: &webv1.GetTicketResponse{Ticket: &webv1.Ticket{}},
		},
	}
	kinds := []struct {
		name   string
		source func(t *testing.T, m *backendv1.GetTicketResponse) protoreflect.Message
		dest   func() protoreflect.Message
	}{
		{"dynamic to dynamic",
			func(t *testing.T, m *backendv1.GetTicketResponse) protoreflect.Message { return toDynamic(t, m) },
			func() protoreflect.Message { return dynamicpb.NewMessage(webResponse) }},
		{"generated to generated",
			func(_ *testing.T, m *backendv1.GetTicketResponse) protoreflect.Message { return m.ProtoReflect() },
			func() protoreflect.Message { return (&webv1.GetTicketResponse{}).ProtoReflect() }},
		{"generated to dynamic",
			func(_ *testing.T, m *backendv1.GetTicketResponse) protoreflect.Message { return m.ProtoReflect() },
			func() protoreflect.Message { return dynamicpb.NewMessage(webResponse) }},
	}
	for _, tt := range tests {
		for _, k := range kinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				dst := k.dest()
				c.ToPublic(dst, k.source(t, tt.src))
				got := convert(t, dst.Interface(), &webv1.GetTicketResponse{})
				if diff := cmpDiff(tt.want, got); diff != "" {
					t.Errorf("ToPublic (-want +got):\n%s", diff)
				}
				if problems := undeclared(dst); len(problems) > 0 {
					t.Errorf("undeclared: %s", strings.Join(problems, "; "))
				}
			})
		}
	}
}

func TestToBackend(t *testing.T) {
	t.Parallel()
	webReq := (&webv1.WatchTicketsRequest{}).ProtoReflect().Descriptor()
	backendReq := (&backendv1.WatchTicketsRequest{}).ProtoReflect().Descriptor()
	c, err := NewCopier(webReq, backendReq)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  *webv1.WatchTicketsRequest
		want *backendv1.WatchTicketsRequest
	}{
		{name: "empty", src: &webv1.WatchTicketsRequest{}, want: &backendv1.WatchTicketsRequest{}},
		{
			name: "declared values",
			src:  &webv1.WatchTicketsRequest{Statuses: []webv1.Status{1, 3}, MaxEvents: 10},
			want: &backendv1.WatchTicketsRequest{Statuses: []backendv1.Status{1, 3}, MaxEvents: 10},
		},
		{
			// 9 is STATUS_QUARANTINED, which only the backend declares: a
			// browser cannot select it.
			name: "enum numbers the public enum lacks",
			src:  &webv1.WatchTicketsRequest{Statuses: []webv1.Status{9, 2, 77}},
			want: &backendv1.WatchTicketsRequest{Statuses: []backendv1.Status{0, 2, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := dynamicpb.NewMessage(backendReq)
			src := toDynamic(t, tt.src)
			src.SetUnknown(protoreflect.RawFields{0x0a, 0x03, 'a', 'b', 'c'}) // field 1 of the backend: account_id
			c.ToBackend(dst, src)
			got := convert(t, dst, &backendv1.WatchTicketsRequest{})
			if diff := cmpDiff(tt.want, got); diff != "" {
				t.Errorf("ToBackend (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToBackendNested(t *testing.T) {
	t.Parallel()
	c, err := NewCopier((&webv1.ImportTicketsRequest{}).ProtoReflect().Descriptor(), (&backendv1.ImportTicketsRequest{}).ProtoReflect().Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	src := &webv1.ImportTicketsRequest{Ticket: webTicket().Ticket}
	dst := &backendv1.ImportTicketsRequest{}
	c.ToBackend(dst.ProtoReflect(), src.ProtoReflect())
	// Back to public: the same ticket, so every public field went through.
	again := &webv1.ImportTicketsRequest{}
	c.ToPublic(again.ProtoReflect(), dst.ProtoReflect())
	if diff := cmpDiff(src, again); diff != "" {
		t.Errorf("ToPublic(ToBackend(x)) (-want +got):\n%s", diff)
	}
	if dst.Ticket.InternalNotes != "" || dst.Ticket.Reporter.Email != "" || dst.Ticket.GetProject().GetCostCenter() != "" {
		t.Errorf("ToBackend set internal fields: %v", dst)
	}
}

func TestToPublicCopiesBytes(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	src := &backendv1.GetTicketResponse{Ticket: &backendv1.Ticket{Etag: []byte("etag")}}
	dst := &webv1.GetTicketResponse{}
	c.ToPublic(dst.ProtoReflect(), src.ProtoReflect())
	src.Ticket.Etag[0] = 'X'
	if got := string(dst.Ticket.Etag); got != "etag" {
		t.Errorf("public etag = %q after the backend's changed: it aliases the backend's bytes", got)
	}
}

func TestToPublicMutatesNoSource(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	src := backendTicket()
	before := proto.Clone(src)
	c.ToPublic((&webv1.GetTicketResponse{}).ProtoReflect(), src.ProtoReflect())
	if !proto.Equal(before, src) {
		t.Error("ToPublic changed its source")
	}
}

func TestCopierPanicsOnOtherDescriptors(t *testing.T) {
	t.Parallel()
	c := responseCopier(t)
	// A descriptor of the same name, built anew from the same file.
	files := buildFiles(t, protodesc.ToFileDescriptorProto(webResponse.ParentFile()))
	twin := findMessage(t, files, webResponse.FullName())
	tests := []struct {
		name     string
		copy     func()
		contains string
	}{
		{"ToPublic swapped", func() {
			c.ToPublic(dynamicpb.NewMessage(backendResponse), dynamicpb.NewMessage(webResponse))
		}, "ToPublic: dst is a routestest.backend.v1.GetTicketResponse"},
		{"ToPublic twin descriptor", func() {
			c.ToPublic(dynamicpb.NewMessage(twin), dynamicpb.NewMessage(backendResponse))
		}, "ToPublic: dst is a routestest.web.v1.GetTicketResponse, not a message of the routestest.web.v1.GetTicketResponse descriptor"},
		{"ToBackend swapped", func() {
			c.ToBackend(dynamicpb.NewMessage(webResponse), dynamicpb.NewMessage(backendResponse))
		}, "ToBackend: dst is a routestest.web.v1.GetTicketResponse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.contains) {
					t.Errorf("panic = %v, want one containing %q", r, tt.contains)
				}
			}()
			tt.copy()
		})
	}
}

func TestCopyDynamicTypes(t *testing.T) {
	t.Parallel()
	pub, back := pair(t,
		[]any{message("Ticket", field("debug", 1, "google.protobuf.Struct"), field("tags", 2, "repeated google.protobuf.Value"))},
		[]any{message("Ticket", field("debug", 3, "google.protobuf.Struct"), field("tags", 4, "repeated google.protobuf.Value"), field("secret", 5, "string"))},
	)
	c, err := NewCopier(pub, back, AllowDynamic())
	if err != nil {
		t.Fatal(err)
	}
	debug, err := structpb.NewStruct(map[string]any{"a": 1.0, "b": []any{"x", true, nil, map[string]any{"deep": []any{2.0}}}})
	if err != nil {
		t.Fatal(err)
	}
	src := dynamicpb.NewMessage(back)
	src.Set(back.Fields().ByName("debug"), protoreflect.ValueOfMessage(convert(t, debug, dynamicpb.NewMessage(back.Fields().ByName("debug").Message()))))
	tags := src.Mutable(back.Fields().ByName("tags")).List()
	tags.Append(protoreflect.ValueOfMessage(convert(t, structpb.NewStringValue("t"), dynamicpb.NewMessage(back.Fields().ByName("tags").Message()))))
	src.Set(back.Fields().ByName("secret"), protoreflect.ValueOfString(marker))

	dst := dynamicpb.NewMessage(pub)
	c.ToPublic(dst, src)
	gotDebug := convert(t, dst.Get(pub.Fields().ByName("debug")).Message().Interface(), &structpb.Struct{})
	if !proto.Equal(gotDebug, debug) {
		t.Errorf("debug = %v, want %v", gotDebug, debug)
	}
	if l := dst.Get(pub.Fields().ByName("tags")).List(); l.Len() != 1 ||
		!proto.Equal(convert(t, l.Get(0).Message().Interface(), &structpb.Value{}), structpb.NewStringValue("t")) {
		t.Errorf("tags not copied")
	}
	if b, _ := proto.Marshal(dst); strings.Contains(string(b), marker) {
		t.Error("public message carries the backend's secret")
	}
}

func TestCopyWellKnownTypeUnknownFields(t *testing.T) {
	t.Parallel()
	c, err := NewCopier((&webv1.GetTicketRequest{}).ProtoReflect().Descriptor(), (&backendv1.GetTicketRequest{}).ProtoReflect().Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	mask := &fieldmaskpb.FieldMask{Paths: []string{"title"}}
	mask.ProtoReflect().SetUnknown(protoreflect.RawFields("\x12\x03abc"))
	dst := &backendv1.GetTicketRequest{}
	c.ToBackend(dst.ProtoReflect(), (&webv1.GetTicketRequest{TicketId: "T-1", ReadMask: mask}).ProtoReflect())
	if got := dst.GetReadMask(); len(got.ProtoReflect().GetUnknown()) != 0 || len(got.GetPaths()) != 1 || got.GetPaths()[0] != "title" || dst.TicketId != "T-1" {
		t.Errorf("ToBackend = %v", dst)
	}
}
