package routes

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestCheckMethod(t *testing.T) {
	t.Parallel()
	files := buildFiles(t,
		file("web.proto", "web.v1",
			message("Req", field("id", 1, "string")),
			message("Res", field("name", 1, "string")),
			message("BadRes", field("email", 1, "string")),
			service("Tickets",
				rpcSpec{name: "Unary", input: "Req", output: "Res"},
				rpcSpec{name: "ServerStream", input: "Req", output: "Res", serverStreams: true},
				rpcSpec{name: "ClientStream", input: "Req", output: "Res", clientStreams: true},
				rpcSpec{name: "Bidi", input: "Req", output: "Res", clientStreams: true, serverStreams: true},
				rpcSpec{name: "BadResponse", input: "Req", output: "BadRes"},
				rpcSpec{name: "BadRequest", input: "Res", output: "Res"},
			),
		),
		file("internal.proto", "internal.v1",
			message("Req", field("id", 1, "string"), field("account_id", 2, "string")),
			message("Res", field("name", 1, "string"), field("secret", 2, "string")),
			service("Tickets",
				rpcSpec{name: "Unary", input: "Req", output: "Res"},
				rpcSpec{name: "ServerStream", input: "Req", output: "Res", serverStreams: true},
				rpcSpec{name: "ClientStream", input: "Req", output: "Res", clientStreams: true},
				rpcSpec{name: "Bidi", input: "Req", output: "Res", clientStreams: true, serverStreams: true},
			),
		),
	)
	method := func(name protoreflect.FullName) protoreflect.MethodDescriptor {
		d, err := files.FindDescriptorByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return d.(protoreflect.MethodDescriptor)
	}
	tests := []struct {
		public, backend protoreflect.FullName
		want            string // "" for a plan
		shape           bool   // want a *ShapeError, else a *MismatchError
	}{
		{public: "web.v1.Tickets.Unary", backend: "internal.v1.Tickets.Unary"},
		{public: "web.v1.Tickets.ServerStream", backend: "internal.v1.Tickets.ServerStream"},
		{public: "web.v1.Tickets.ClientStream", backend: "internal.v1.Tickets.ClientStream", shape: true,
			want: "web.v1.Tickets.ClientStream: is client-streaming; only unary and server-streaming routes are supported"},
		{public: "web.v1.Tickets.Bidi", backend: "internal.v1.Tickets.Bidi", shape: true,
			want: "web.v1.Tickets.Bidi: is bidirectional-streaming; only unary and server-streaming routes are supported"},
		{public: "web.v1.Tickets.Unary", backend: "internal.v1.Tickets.ServerStream", shape: true,
			want: "web.v1.Tickets.Unary: is unary but backend method internal.v1.Tickets.ServerStream is server-streaming"},
		{public: "web.v1.Tickets.ServerStream", backend: "internal.v1.Tickets.Unary", shape: true,
			want: "web.v1.Tickets.ServerStream: is server-streaming but backend method internal.v1.Tickets.Unary is unary"},
		{public: "web.v1.Tickets.Unary", backend: "internal.v1.Tickets.ClientStream", shape: true,
			want: "web.v1.Tickets.Unary: is unary but backend method internal.v1.Tickets.ClientStream is client-streaming"},
		{public: "web.v1.Tickets.BadResponse", backend: "internal.v1.Tickets.Unary",
			want: `web.v1.BadRes field email: backend message internal.v1.Res has no field "email"`},
		{public: "web.v1.Tickets.BadRequest", backend: "internal.v1.Tickets.Unary",
			want: `web.v1.Res field name: backend message internal.v1.Req has no field "name"`},
	}
	for _, tt := range tests {
		t.Run(string(tt.public)+"←"+string(tt.backend), func(t *testing.T) {
			t.Parallel()
			plan, err := CheckMethod(method(tt.public), method(tt.backend))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckMethod: %v", err)
				}
				if plan.Request.Public() != method(tt.public).Input() || plan.Request.Backend() != method(tt.backend).Input() ||
					plan.Response.Public() != method(tt.public).Output() || plan.Response.Backend() != method(tt.backend).Output() {
					t.Errorf("plan copies the wrong types: %+v", plan)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("CheckMethod error:\n got %v\nwant %s", err, tt.want)
			}
			_, isShape := errors.AsType[*ShapeError](err)
			_, isMismatch := errors.AsType[*MismatchError](err)
			if isShape != tt.shape || isMismatch == tt.shape {
				t.Errorf("CheckMethod error is a %T", err)
			}
		})
	}
}
