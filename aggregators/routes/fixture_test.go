package routes

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// marker is what every internal value of the test backend carries. No
// public value contains it.
const marker = "CANARY-INTERNAL"

var (
	webResponse     = (&webv1.GetTicketResponse{}).ProtoReflect().Descriptor()
	backendResponse = (&backendv1.GetTicketResponse{}).ProtoReflect().Descriptor()
)

// responseCopier compiles the copier of the test schemas' GetTicket answers.
func responseCopier(t testing.TB) *Copier {
	t.Helper()
	c, err := NewCopier(webResponse, backendResponse)
	if err != nil {
		t.Fatalf("NewCopier: %v", err)
	}
	return c
}

var created = time.Date(2026, 11, 2, 9, 30, 0, 500, time.UTC)

func backendUser(id string) *backendv1.User {
	return &backendv1.User{Id: id, DisplayName: "User " + id, AvatarUrl: "https://img.example/" + id,
		Email: marker + "@example.com", PasswordHash: marker, Roles: []string{marker, marker}}
}

func webUser(id string) *webv1.User {
	return &webv1.User{Id: id, DisplayName: "User " + id, AvatarUrl: "https://img.example/" + id}
}

func backendComment(id string, replies ...*backendv1.Comment) *backendv1.Comment {
	return &backendv1.Comment{Id: id, Author: backendUser("a-" + id), Body: "Body of " + id,
		CreateTime: timestamppb.New(created), Replies: replies, Flagged: true, ModeratorNote: marker}
}

func webComment(id string, replies ...*webv1.Comment) *webv1.Comment {
	return &webv1.Comment{Id: id, Author: webUser("a-" + id), Body: "Body of " + id,
		CreateTime: timestamppb.New(created), Replies: replies}
}

// backendTicket is a realistic backend answer: every field the public schema
// names is set (some to values it does not declare), and every internal
// field, at every level, carries the marker.
func backendTicket() *backendv1.GetTicketResponse {
	internalStruct, err := structpb.NewStruct(map[string]any{"query": marker, "hosts": []any{marker, 3.0}, "nested": map[string]any{marker: marker}})
	if err != nil {
		panic(err)
	}
	return &backendv1.GetTicketResponse{
		DebugTrace:    marker,
		ServedByShard: marker,
		Ticket: &backendv1.Ticket{
			Id:                  "T-1042",
			Title:               "Checkout fails for saved cards",
			Description:         "Customers with a saved card see an error at the last step.",
			Status:              backendv1.Status_STATUS_QUARANTINED, // not public
			Priority:            backendv1.Priority_PRIORITY_HIGH,
			CreateTime:          timestamppb.New(created),
			UpdateTime:          timestamppb.New(created.Add(time.Hour)),
			TimeToFirstResponse: durationpb.New(90 * time.Second),
			Reporter:            backendUser("u1"),
			Assignee:            backendUser("u2"),
			Comments: []*backendv1.Comment{
				backendComment("c1", backendComment("c1.1"), backendComment("c1.2", backendComment("c1.2.1"))),
				backendComment("c2"),
				backendComment("c3", backendComment("c3.1")),
			},
			Tags:   []string{"checkout", "payments", "p1", "web", "saved-cards", "regression"},
			Labels: map[string]string{"team": "payments", "area": "checkout", "customer": "many", "env": "prod"},
			Attachments: map[string]*backendv1.Attachment{
				"screenshot": {Name: "screen.png", SizeBytes: 48213, ContentType: "image/png", StorageBucket: marker, SigningSecret: marker},
				"har":        {Name: "session.har", SizeBytes: 1 << 20, ContentType: "application/json", StorageBucket: marker, SigningSecret: marker},
			},
			StoryPoints:   proto.Int32(0), // present, zero
			Archived:      nil,            // absent
			ViewCount:     1234,
			SlaHours:      4.5,
			Satisfaction:  0.75,
			Etag:          []byte{0, 1, 2, 3, 0xfe},
			Revision:      17,
			History:       []backendv1.Status{backendv1.Status_STATUS_OPEN, backendv1.Status_STATUS_QUARANTINED, backendv1.Status_STATUS_IN_PROGRESS, 12345},
			ExternalRef:   wrapperspb.String(""), // present, empty
			UpdatedFields: &fieldmaskpb.FieldMask{Paths: []string{"title", "status"}},
			Target: &backendv1.Ticket_Project{Project: &backendv1.Project{
				Id: "P-7", Name: "Checkout", CostCenter: marker,
			}},
			WatcherIds:    []int64{1, 2, 3, 5, 8, 13, 21, 34},
			Checksum:      0xdeadbeefcafe,
			PriorityDelta: -3,
			StepStatus:    map[int32]backendv1.Status{1: backendv1.Status_STATUS_CLOSED, 2: backendv1.Status_STATUS_QUARANTINED, 3: 777},

			InternalNotes: marker,
			FraudScore:    0.93,
			Debug:         internalStruct,
			AuditLog:      []string{marker, marker, marker},
			InternalFlags: map[string]string{marker: marker, "flag": marker},
			RawRow:        []byte(marker),
		},
	}
}

// webTicket is what backendTicket must become.
func webTicket() *webv1.GetTicketResponse {
	return &webv1.GetTicketResponse{
		Ticket: &webv1.Ticket{
			Id:                  "T-1042",
			Title:               "Checkout fails for saved cards",
			Description:         "Customers with a saved card see an error at the last step.",
			Status:              webv1.Status_STATUS_UNSPECIFIED,
			Priority:            webv1.Priority_PRIORITY_HIGH,
			CreateTime:          timestamppb.New(created),
			UpdateTime:          timestamppb.New(created.Add(time.Hour)),
			TimeToFirstResponse: durationpb.New(90 * time.Second),
			Reporter:            webUser("u1"),
			Assignee:            webUser("u2"),
			Comments: []*webv1.Comment{
				webComment("c1", webComment("c1.1"), webComment("c1.2", webComment("c1.2.1"))),
				webComment("c2"),
				webComment("c3", webComment("c3.1")),
			},
			Tags:   []string{"checkout", "payments", "p1", "web", "saved-cards", "regression"},
			Labels: map[string]string{"team": "payments", "area": "checkout", "customer": "many", "env": "prod"},
			Attachments: map[string]*webv1.Attachment{
				"screenshot": {Name: "screen.png", SizeBytes: 48213, ContentType: "image/png"},
				"har":        {Name: "session.har", SizeBytes: 1 << 20, ContentType: "application/json"},
			},
			StoryPoints:   proto.Int32(0),
			ViewCount:     1234,
			SlaHours:      4.5,
			Satisfaction:  0.75,
			Etag:          []byte{0, 1, 2, 3, 0xfe},
			Revision:      17,
			History:       []webv1.Status{webv1.Status_STATUS_OPEN, webv1.Status_STATUS_UNSPECIFIED, webv1.Status_STATUS_IN_PROGRESS, webv1.Status_STATUS_UNSPECIFIED},
			ExternalRef:   wrapperspb.String(""),
			UpdatedFields: &fieldmaskpb.FieldMask{Paths: []string{"title", "status"}},
			Target:        &webv1.Ticket_Project{Project: &webv1.Project{Id: "P-7", Name: "Checkout"}},
			WatcherIds:    []int64{1, 2, 3, 5, 8, 13, 21, 34},
			Checksum:      0xdeadbeefcafe,
			PriorityDelta: -3,
			StepStatus:    map[int32]webv1.Status{1: webv1.Status_STATUS_CLOSED, 2: webv1.Status_STATUS_UNSPECIFIED, 3: webv1.Status_STATUS_UNSPECIFIED},
		},
	}
}

// decodeDynamic decodes b as a dynamic message of md, as the gateway decodes
// backend answers.
func decodeDynamic(t testing.TB, md protoreflect.MessageDescriptor, b []byte) *dynamicpb.Message {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("decode %s: %v", md.FullName(), err)
	}
	return m
}

// toDynamic re-encodes m as a dynamic message of its own descriptor.
func toDynamic(t testing.TB, m proto.Message) *dynamicpb.Message {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return decodeDynamic(t, m.ProtoReflect().Descriptor(), b)
}

// convert re-encodes m, a message of any kind, as into.
func convert[T proto.Message](t testing.TB, m proto.Message, into T) T {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return into
}

// walk calls fn for m and every message set in it, at any depth.
func walk(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					walk(v.Message(), fn)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message(), fn)
				}
			}
		case fd.Message() != nil:
			walk(v.Message(), fn)
		}
		return true
	})
}

// undeclared returns the problems of a copied public message: unknown
// fields, and enum numbers its enums do not declare.
func undeclared(m protoreflect.Message) []string {
	var problems []string
	walk(m, func(m protoreflect.Message) {
		if len(m.GetUnknown()) > 0 {
			problems = append(problems, string(m.Descriptor().FullName())+" has unknown fields")
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			check := func(v protoreflect.Value) {
				if fd.Enum().Values().ByNumber(v.Enum()) == nil {
					problems = append(problems, string(fd.FullName())+" holds undeclared enum number")
				}
			}
			switch {
			case fd.IsMap() && fd.MapValue().Enum() != nil:
				fd := fd.MapValue()
				v.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					if fd.Enum().Values().ByNumber(v.Enum()) == nil {
						problems = append(problems, string(fd.FullName())+" holds undeclared enum number")
					}
					return true
				})
			case fd.IsList() && fd.Enum() != nil:
				for i := range v.List().Len() {
					check(v.List().Get(i))
				}
			case !fd.IsMap() && !fd.IsList() && fd.Enum() != nil:
				check(v)
			}
			return true
		})
	})
	return problems
}
