package routes

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestCheckSeparation refuses public methods that would hand a backend's own
// types, or its file, to browsers and reflection, and accepts a public
// schema of its own that shares only well-known types.
func TestCheckSeparation(t *testing.T) {
	t.Parallel()
	backendFile := file("internal.proto", "internal.v1", imports{"google/protobuf/timestamp.proto"},
		message("Ticket", field("id", 1, "string"), field("fraud_score", 2, "int32")),
		enum("Status", "STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1),
		message("GetTicketRequest", field("id", 1, "string")),
		message("GetTicketResponse", field("ticket", 1, "Ticket"), field("status", 2, "Status")),
		service("TicketService", rpcSpec{name: "GetTicket", input: ".internal.v1.GetTicketRequest", output: ".internal.v1.GetTicketResponse"}),
	)
	sharedFile := file("internal_shared.proto", "internal.v1",
		message("Note", field("text", 1, "string"), field("staff_only", 2, "bool")),
		enum("Level", "LEVEL_UNSPECIFIED", 0, "LEVEL_SECRET", 1),
	)
	cases := []struct {
		name    string
		public  []any
		imports imports
		reason  string // "" for an accepted schema
	}{
		{name: "own types and well-known types", public: []any{
			message("Ticket", field("id", 1, "string"), field("create_time", 2, "google.protobuf.Timestamp")),
			message("GetTicketResponse", field("ticket", 1, "Ticket")),
		}},
		{name: "backend message in a nested field", imports: imports{"internal.proto"}, public: []any{
			message("Wrapper", field("ticket", 1, "internal.v1.Ticket")),
			message("GetTicketResponse", field("wrapper", 1, "Wrapper")),
		}, reason: "the public schema imports the backend's file internal.proto, which reflection would then describe"},
		{name: "backend enum", imports: imports{"internal.proto"}, public: []any{
			message("GetTicketResponse", field("status", 1, "internal.v1.Status")),
		}, reason: "the public schema imports the backend's file internal.proto"},
		{name: "type of the backend's package from another file", imports: imports{"internal_shared.proto"}, public: []any{
			message("Wrapper", field("notes", 1, "map<string, internal.v1.Note>")),
			message("GetTicketResponse", field("wrapper", 1, "Wrapper")),
		}, reason: "field GetTicketResponse.wrapper.notes: type internal.v1.Note is declared in the backend's package internal.v1"},
		{name: "enum of the backend's package from another file", imports: imports{"internal_shared.proto"}, public: []any{
			message("GetTicketResponse", field("levels", 1, "repeated internal.v1.Level")),
		}, reason: "field GetTicketResponse.levels: enum internal.v1.Level is declared in the backend's package internal.v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			parts := append([]any{imports{"google/protobuf/timestamp.proto"}, c.imports,
				message("GetTicketRequest", field("id", 1, "string")),
				service("TicketService", rpcSpec{name: "GetTicket", input: ".web.v1.GetTicketRequest", output: ".web.v1.GetTicketResponse"}),
			}, c.public...)
			files := buildFiles(t, backendFile, sharedFile, file("web.proto", "web.v1", parts...))
			public := findMethodDesc(t, files.FindDescriptorByName, "web.v1.TicketService.GetTicket")
			backend := findMethodDesc(t, files.FindDescriptorByName, "internal.v1.TicketService.GetTicket")
			err := CheckSeparation(public, backend)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("CheckSeparation: %v", err)
				}
				return
			}
			var se *SeparationError
			if !errors.As(err, &se) || !strings.Contains(se.Error(), c.reason) {
				t.Fatalf("CheckSeparation = %v, want a *SeparationError saying %q", err, c.reason)
			}
		})
	}
	// A public method whose own types live in the backend's package.
	files := buildFiles(t, backendFile)
	backend := findMethodDesc(t, files.FindDescriptorByName, "internal.v1.TicketService.GetTicket")
	var se *SeparationError
	if err := CheckSeparation(backend, backend); !errors.As(err, &se) {
		t.Fatalf("a backend method as its own public method: %v, want a *SeparationError", err)
	}
	if err := checkTypes(backend.Output(), "internal.v1", "GetTicketResponse", map[protoreflect.FullName]bool{}); err == nil ||
		err.Error() != "field GetTicketResponse: type internal.v1.GetTicketResponse is declared in the backend's package internal.v1; declare the public type in the public schema" {
		t.Fatalf("checkTypes = %v", err)
	}
}

func findMethodDesc(t *testing.T, find func(protoreflect.FullName) (protoreflect.Descriptor, error), name protoreflect.FullName) protoreflect.MethodDescriptor {
	t.Helper()
	d, err := find(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MethodDescriptor)
}
