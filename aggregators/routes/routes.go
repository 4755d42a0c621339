// Package routes copies messages between a public schema, written for
// browsers, and a backend's schema, for routes declared in configuration as
// public method ← backend method.
//
// A [Copier] is compiled once, at start, from a public and a backend message
// type. Compiling validates that the backend type can fill every field the
// public type declares, by name, with the same kind, cardinality, presence,
// oneof grouping and enum values, and refuses with a [*MismatchError] naming
// the field otherwise. Copying then walks the public type's fields only:
//
//	files, err := routes.LoadFiles("public.binpb") // buf build -o public.binpb
//	public, err := routes.FindMethod(files, "web.tickets.v1.TicketService/GetTicket")
//	backend, err := routes.FindMethod(files, "internal.tickets.v1.TicketService/GetTicket")
//	plan, err := routes.CheckMethod(public, backend)
//	...
//	res := dynamicpb.NewMessage(public.Output())
//	plan.Response.ToPublic(res, backendAnswer)
//
// A public answer is always a new message filled field by field, never
// backend bytes decoded into the public type, so a field, oneof member or
// enum value that the public schema does not name, and the unknown fields
// that protobuf keeps on decoding, cannot reach a browser.
package routes
