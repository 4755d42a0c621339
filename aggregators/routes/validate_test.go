package routes

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestNewCopierRefuses(t *testing.T) {
	t.Parallel()
	user := func(fields ...any) any { return message("User", fields...) }
	status := func(values ...any) any { return enum("Status", values...) }
	tests := []struct {
		name            string
		public, backend []any
		opts            []Option
		want            string
	}{
		{
			name:    "missing field",
			public:  []any{message("Ticket", field("id", 1, "string"), field("email", 2, "string"))},
			backend: []any{message("Ticket", field("id", 1, "string"))},
			want:    `web.v1.Ticket field email: backend message internal.v1.Ticket has no field "email"`,
		},
		{
			name: "missing field deep in repeated messages",
			public: []any{
				message("Ticket", field("comments", 1, "repeated Comment")),
				message("Comment", field("author", 1, "User")),
				user(field("name", 1, "string"), field("email", 2, "string")),
			},
			backend: []any{
				message("Ticket", field("comments", 7, "repeated Comment")),
				message("Comment", field("author", 3, "Person")),
				message("Person", field("name", 1, "string")),
			},
			want: `web.v1.Ticket field comments[].author.email: backend message internal.v1.Person has no field "email"`,
		},
		{
			name:    "missing field in map values",
			public:  []any{message("Ticket", field("labels", 1, "map<string, Label>")), message("Label", field("name", 1, "string"))},
			backend: []any{message("Ticket", field("labels", 1, "map<string, Label>")), message("Label", field("title", 1, "string"))},
			want:    `web.v1.Ticket field labels{}.name: backend message internal.v1.Label has no field "name"`,
		},
		{
			name:    "int32 for int64",
			public:  []any{message("Ticket", field("count", 1, "int32"))},
			backend: []any{message("Ticket", field("count", 1, "int64"))},
			want:    `web.v1.Ticket field count: is int32 but the backend field is int64`,
		},
		{
			name:    "sint32 for int32",
			public:  []any{message("Ticket", field("count", 1, "sint32"))},
			backend: []any{message("Ticket", field("count", 1, "int32"))},
			want:    `web.v1.Ticket field count: is sint32 but the backend field is int32`,
		},
		{
			name:    "sfixed64 for int64",
			public:  []any{message("Ticket", field("count", 1, "sfixed64"))},
			backend: []any{message("Ticket", field("count", 1, "int64"))},
			want:    `web.v1.Ticket field count: is sfixed64 but the backend field is int64`,
		},
		{
			name:    "string for bytes",
			public:  []any{message("Ticket", field("etag", 1, "string"))},
			backend: []any{message("Ticket", field("etag", 1, "bytes"))},
			want:    `web.v1.Ticket field etag: is string but the backend field is bytes`,
		},
		{
			name:    "message for string",
			public:  []any{message("Ticket", field("owner", 1, "User")), user(field("id", 1, "string"))},
			backend: []any{message("Ticket", field("owner", 1, "string"))},
			want:    `web.v1.Ticket field owner: is message web.v1.User but the backend field is string`,
		},
		{
			name:    "enum for int32",
			public:  []any{message("Ticket", field("status", 1, "Status")), status("STATUS_UNSPECIFIED", 0)},
			backend: []any{message("Ticket", field("status", 1, "int32"))},
			want:    `web.v1.Ticket field status: is enum web.v1.Status but the backend field is int32`,
		},
		{
			name:    "group for message",
			public:  []any{syntax("proto2"), message("Ticket", field("owner", 1, "group Owner"), message("Owner", field("id", 1, "string")))},
			backend: []any{syntax("proto2"), message("Ticket", field("owner", 1, "Owner")), message("Owner", field("id", 1, "string"))},
			want:    `web.v1.Ticket field owner: is group web.v1.Ticket.Owner but the backend field is message internal.v1.Owner`,
		},
		{
			name:    "repeated for singular",
			public:  []any{message("Ticket", field("tags", 1, "repeated string"))},
			backend: []any{message("Ticket", field("tags", 1, "string"))},
			want:    `web.v1.Ticket field tags: is repeated but the backend field is singular`,
		},
		{
			name:    "singular for repeated",
			public:  []any{message("Ticket", field("tags", 1, "string"))},
			backend: []any{message("Ticket", field("tags", 1, "repeated string"))},
			want:    `web.v1.Ticket field tags: is singular but the backend field is repeated`,
		},
		{
			name:    "map for repeated",
			public:  []any{message("Ticket", field("labels", 1, "map<string, string>"))},
			backend: []any{message("Ticket", field("labels", 1, "repeated LabelsEntry")), message("LabelsEntry", field("key", 1, "string"), field("value", 2, "string"))},
			want:    `web.v1.Ticket field labels: is a map but the backend field is repeated`,
		},
		{
			name:    "repeated for map",
			public:  []any{message("Ticket", field("labels", 1, "repeated LabelsEntry")), message("LabelsEntry", field("key", 1, "string"), field("value", 2, "string"))},
			backend: []any{message("Ticket", field("labels", 1, "map<string, string>"))},
			want:    `web.v1.Ticket field labels: is repeated but the backend field is a map`,
		},
		{
			name:    "required for optional",
			public:  []any{syntax("proto2"), message("Ticket", field("id", 1, "required string"))},
			backend: []any{syntax("proto2"), message("Ticket", field("id", 1, "string"))},
			want:    `web.v1.Ticket field id: is required but the backend field is not`,
		},
		{
			name:    "optional for required",
			public:  []any{syntax("proto2"), message("Ticket", field("id", 1, "string"))},
			backend: []any{syntax("proto2"), message("Ticket", field("id", 1, "required string"))},
			want:    `web.v1.Ticket field id: is not required but the backend field is`,
		},
		{
			name:    "map key kind",
			public:  []any{message("Ticket", field("steps", 1, "map<int32, string>"))},
			backend: []any{message("Ticket", field("steps", 1, "map<int64, string>"))},
			want:    `web.v1.Ticket field steps: map key is int32 but the backend map key is int64`,
		},
		{
			name:    "map value kind",
			public:  []any{message("Ticket", field("labels", 1, "map<string, string>"))},
			backend: []any{message("Ticket", field("labels", 1, "map<string, bytes>"))},
			want:    `web.v1.Ticket field labels: map value is string but the backend map value is bytes`,
		},
		{
			name:    "map value message for enum",
			public:  []any{message("Ticket", field("labels", 1, "map<string, Label>")), message("Label")},
			backend: []any{message("Ticket", field("labels", 1, "map<string, Label>")), enum("Label", "LABEL_UNSPECIFIED", 0)},
			want:    `web.v1.Ticket field labels: map value is message web.v1.Label but the backend map value is enum internal.v1.Label`,
		},
		{
			name:    "map value enum values",
			public:  []any{message("Ticket", field("steps", 1, "map<int32, Status>")), status("STATUS_UNSPECIFIED", 0, "STATUS_DONE", 2)},
			backend: []any{message("Ticket", field("steps", 1, "map<int32, Status>")), status("STATUS_UNSPECIFIED", 0)},
			want:    `web.v1.Ticket field steps: enum web.v1.Status value STATUS_DONE = 2: backend enum internal.v1.Status has no value named STATUS_DONE`,
		},
		{
			name:    "enum value missing",
			public:  []any{message("Ticket", field("status", 1, "Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1)},
			backend: []any{message("Ticket", field("status", 1, "Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_CLOSED", 3)},
			want:    `web.v1.Ticket field status: enum web.v1.Status value STATUS_OPEN = 1: backend enum internal.v1.Status has no value named STATUS_OPEN`,
		},
		{
			name:    "enum value renumbered",
			public:  []any{message("Ticket", field("status", 1, "Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1)},
			backend: []any{message("Ticket", field("status", 1, "Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 2)},
			want:    `web.v1.Ticket field status: enum web.v1.Status value STATUS_OPEN = 1: backend enum internal.v1.Status has STATUS_OPEN = 2`,
		},
		{
			name:    "repeated enum value renamed",
			public:  []any{message("Ticket", field("history", 1, "repeated Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1)},
			backend: []any{message("Ticket", field("history", 1, "repeated Status")), status("STATUS_UNSPECIFIED", 0, "STATUS_NEW", 1)},
			want:    `web.v1.Ticket field history: enum web.v1.Status value STATUS_OPEN = 1: backend enum internal.v1.Status has no value named STATUS_OPEN`,
		},
		{
			name:    "optional for implicit presence",
			public:  []any{message("Ticket", field("points", 1, "optional int32"))},
			backend: []any{message("Ticket", field("points", 1, "int32"))},
			want:    `web.v1.Ticket field points: tracks presence (optional) but the backend field does not`,
		},
		{
			name:    "implicit presence for optional",
			public:  []any{message("Ticket", field("points", 1, "int32"))},
			backend: []any{message("Ticket", field("points", 1, "optional int32"))},
			want:    `web.v1.Ticket field points: does not track presence but the backend field does (optional)`,
		},
		{
			name:    "oneof member for plain field",
			public:  []any{message("Ticket", field("team", 1, "string", oneof("target")))},
			backend: []any{message("Ticket", field("team", 1, "string"))},
			want:    `web.v1.Ticket field team: is in oneof "target" but the backend field is not in a oneof`,
		},
		{
			name:    "plain field for oneof member",
			public:  []any{message("Ticket", field("team", 1, "string"))},
			backend: []any{message("Ticket", field("team", 1, "string", oneof("target")))},
			want:    `web.v1.Ticket field team: is not in a oneof but the backend field is in oneof "target"`,
		},
		{
			name:    "optional for oneof member",
			public:  []any{message("Ticket", field("team", 1, "optional string"))},
			backend: []any{message("Ticket", field("team", 1, "string", oneof("target")))},
			want:    `web.v1.Ticket field team: is not in a oneof but the backend field is in oneof "target"`,
		},
		{
			name:    "oneof split across backend oneofs",
			public:  []any{message("Ticket", field("team", 1, "string", oneof("target")), field("project", 2, "string", oneof("target")))},
			backend: []any{message("Ticket", field("team", 1, "string", oneof("owner")), field("project", 2, "string", oneof("budget")))},
			want:    `web.v1.Ticket field project: is in oneof "target" with field "team", but their backend fields are in different oneofs ("owner" and "budget")`,
		},
		{
			name:    "two public oneofs for one backend oneof",
			public:  []any{message("Ticket", field("team", 1, "string", oneof("target")), field("project", 2, "string", oneof("budget")))},
			backend: []any{message("Ticket", field("team", 1, "string", oneof("owner")), field("project", 2, "string", oneof("owner")))},
			want:    `web.v1.Ticket field project: is in oneof "budget" but its backend field shares oneof "owner" with the backend field of "team", which is in oneof "target"`,
		},
		{
			name:    "any field",
			public:  []any{message("Ticket", field("details", 1, "google.protobuf.Any"))},
			backend: []any{message("Ticket", field("details", 1, "google.protobuf.Any"))},
			want:    `web.v1.Ticket field details: is google.protobuf.Any, which carries arbitrary, possibly internal types; refused unless dynamic types are allowed`,
		},
		{
			name:    "repeated struct field",
			public:  []any{message("Ticket", field("debug", 1, "repeated google.protobuf.Struct"))},
			backend: []any{message("Ticket", field("debug", 1, "repeated google.protobuf.Struct"))},
			want:    `web.v1.Ticket field debug: is google.protobuf.Struct, which carries arbitrary, possibly internal types; refused unless dynamic types are allowed`,
		},
		{
			name:    "value map values",
			public:  []any{message("Ticket", field("extra", 1, "map<string, google.protobuf.Value>"))},
			backend: []any{message("Ticket", field("extra", 1, "map<string, google.protobuf.Value>"))},
			want:    `web.v1.Ticket field extra: map value is google.protobuf.Value, which carries arbitrary, possibly internal types; refused unless dynamic types are allowed`,
		},
		{
			name:    "list value in nested message",
			public:  []any{message("Ticket", field("owner", 1, "User")), user(field("roles", 1, "google.protobuf.ListValue"))},
			backend: []any{message("Ticket", field("owner", 1, "User")), user(field("roles", 1, "google.protobuf.ListValue"))},
			want:    `web.v1.Ticket field owner.roles: is google.protobuf.ListValue, which carries arbitrary, possibly internal types; refused unless dynamic types are allowed`,
		},
		{
			name:    "well-known type for own type",
			public:  []any{message("Ticket", field("created", 1, "google.protobuf.Timestamp"))},
			backend: []any{message("Ticket", field("created", 1, "Time")), message("Time", field("seconds", 1, "int64"), field("nanos", 2, "int32"))},
			want:    `web.v1.Ticket field created: is google.protobuf.Timestamp, which is not backend type internal.v1.Time: a well-known type only matches itself`,
		},
		{
			name:    "own type for well-known type",
			public:  []any{message("Ticket", field("created", 1, "Time")), message("Time", field("seconds", 1, "int64"))},
			backend: []any{message("Ticket", field("created", 1, "google.protobuf.Timestamp"))},
			want:    `web.v1.Ticket field created: is web.v1.Time, which is not backend type google.protobuf.Timestamp: a well-known type only matches itself`,
		},
		{
			name:    "wrapper for another wrapper",
			public:  []any{message("Ticket", field("ref", 1, "google.protobuf.StringValue"))},
			backend: []any{message("Ticket", field("ref", 1, "google.protobuf.BytesValue"))},
			want:    `web.v1.Ticket field ref: is google.protobuf.StringValue, which is not backend type google.protobuf.BytesValue: a well-known type only matches itself`,
		},
		{
			name: "mismatch below a recursive type",
			public: []any{
				message("Ticket", field("comments", 1, "repeated Comment")),
				message("Comment", field("replies", 1, "repeated Comment"), field("body", 2, "string")),
			},
			backend: []any{
				message("Ticket", field("comments", 1, "repeated Comment")),
				message("Comment", field("replies", 1, "repeated Comment"), field("body", 2, "bytes")),
			},
			want: `web.v1.Ticket field comments[].body: is string but the backend field is bytes`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub, back := pair(t, tt.public, tt.backend)
			c, err := NewCopier(pub, back, tt.opts...)
			me, ok := errors.AsType[*MismatchError](err)
			if !ok {
				t.Fatalf("NewCopier = %v, %v; want a *MismatchError", c, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if me.Message != "web.v1.Ticket" {
				t.Errorf("Message = %q, want web.v1.Ticket", me.Message)
			}
		})
	}
}

func TestNewCopierRefusesRoot(t *testing.T) {
	t.Parallel()
	files := buildFiles(t, file("web.proto", "web.v1",
		imports{"google/protobuf/struct.proto", "google/protobuf/timestamp.proto", "google/protobuf/empty.proto"},
		message("Time", field("seconds", 1, "int64")),
	))
	find := func(name string) protoreflect.MessageDescriptor {
		return findMessage(t, files, protoreflect.FullName(name))
	}
	tests := []struct {
		name            string
		public, backend string
		want            string
	}{
		{"struct", "google.protobuf.Struct", "google.protobuf.Struct",
			`google.protobuf.Struct: the message carries arbitrary, possibly internal types; refused unless dynamic types are allowed`},
		{"timestamp for own type", "google.protobuf.Timestamp", "web.v1.Time",
			`google.protobuf.Timestamp: the message is not backend type web.v1.Time: a well-known type only matches itself`},
		{"own type for empty", "web.v1.Time", "google.protobuf.Empty",
			`web.v1.Time: the message is not backend type google.protobuf.Empty: a well-known type only matches itself`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewCopier(find(tt.public), find(tt.backend))
			if _, ok := errors.AsType[*MismatchError](err); !ok || err.Error() != tt.want {
				t.Errorf("NewCopier error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestNewCopierAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		public, backend []any
		opts            []Option
	}{
		{
			name: "subset with other numbers and type names",
			public: []any{
				message("Ticket", field("id", 1, "string"), field("owner", 2, "User"), field("labels", 3, "map<string, Label>")),
				message("User", field("name", 1, "string")),
				message("Label", field("color", 1, "string")),
			},
			backend: []any{
				message("Ticket", field("secret", 1, "string"), field("id", 9, "string"), field("owner", 8, "Person"), field("labels", 7, "map<string, Tag>")),
				message("Person", field("name", 5, "string"), field("email", 6, "string")),
				message("Tag", field("color", 2, "string"), field("acl", 3, "bytes")),
			},
		},
		{
			name: "recursive types",
			public: []any{
				message("Ticket", field("parent", 1, "Ticket"), field("comments", 2, "repeated Comment")),
				message("Comment", field("replies", 1, "repeated Comment"), field("thread", 2, "map<string, Comment>")),
			},
			backend: []any{
				message("Ticket", field("parent", 3, "Ticket"), field("comments", 4, "repeated Comment")),
				message("Comment", field("replies", 1, "repeated Comment"), field("thread", 2, "map<string, Comment>")),
			},
		},
		{
			name:    "enum subset with another type name",
			public:  []any{message("Ticket", field("status", 1, "State")), enum("State", "STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1)},
			backend: []any{message("Ticket", field("status", 1, "Status")), enum("Status", "STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1, "STATUS_SECRET", 9)},
		},
		{
			name:    "oneof subset with another name",
			public:  []any{message("Ticket", field("team", 1, "string", oneof("target")), field("project", 2, "string", oneof("target")))},
			backend: []any{message("Ticket", field("team", 1, "string", oneof("owner")), field("project", 2, "string", oneof("owner")), field("queue", 3, "string", oneof("owner")))},
		},
		{
			name: "well-known types",
			public: []any{message("Ticket", field("created", 1, "google.protobuf.Timestamp"), field("ttl", 2, "google.protobuf.Duration"),
				field("ref", 3, "google.protobuf.StringValue"), field("nothing", 4, "google.protobuf.Empty"))},
			backend: []any{message("Ticket", field("created", 1, "google.protobuf.Timestamp"), field("ttl", 2, "google.protobuf.Duration"),
				field("ref", 3, "google.protobuf.StringValue"), field("nothing", 4, "google.protobuf.Empty"))},
		},
		{
			name:    "public empty for any backend message",
			public:  []any{message("Ticket", field("result", 1, "google.protobuf.Empty"))},
			backend: []any{message("Ticket", field("result", 1, "Result")), message("Result", field("secret", 1, "string"))},
		},
		{
			name:    "dynamic types when allowed",
			public:  []any{message("Ticket", field("details", 1, "google.protobuf.Any"), field("debug", 2, "google.protobuf.Struct"))},
			backend: []any{message("Ticket", field("details", 1, "google.protobuf.Any"), field("debug", 2, "google.protobuf.Struct"))},
			opts:    []Option{AllowDynamic()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub, back := pair(t, tt.public, tt.backend)
			if _, err := NewCopier(pub, back, tt.opts...); err != nil {
				t.Fatalf("NewCopier: %v", err)
			}
		})
	}
}
