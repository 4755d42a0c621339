package routes

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// This file builds test schemas as descriptorpb literals, in a notation close
// to .proto:
//
//	file("web.proto", "web.v1", imports("google/protobuf/any.proto"),
//		message("Ticket",
//			field("id", 1, "string"),
//			field("tags", 2, "repeated string"),
//			field("labels", 3, "map<string, Label>"),
//			field("points", 4, "optional int32"),
//			field("project", 5, "Project", oneof("target")),
//		),
//		enum("Status", "STATUS_UNSPECIFIED", 0, "STATUS_OPEN", 1),
//	)
//
// A type that is not a scalar is a message or enum name, resolved by protodesc
// like protoc resolves it; "group Name" is a proto2 group.

type imports []string

type syntax string

type fieldSpec struct {
	name   string
	number int32
	typ    string
	oneof  string
}

type fieldOption func(*fieldSpec)

func oneof(name string) fieldOption { return func(f *fieldSpec) { f.oneof = name } }

func field(name string, number int32, typ string, opts ...fieldOption) fieldSpec {
	f := fieldSpec{name: name, number: number, typ: typ}
	for _, o := range opts {
		o(&f)
	}
	return f
}

var scalarTypes = map[string]descriptorpb.FieldDescriptorProto_Type{
	"double": descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, "float": descriptorpb.FieldDescriptorProto_TYPE_FLOAT,
	"int64": descriptorpb.FieldDescriptorProto_TYPE_INT64, "uint64": descriptorpb.FieldDescriptorProto_TYPE_UINT64,
	"int32": descriptorpb.FieldDescriptorProto_TYPE_INT32, "fixed64": descriptorpb.FieldDescriptorProto_TYPE_FIXED64,
	"fixed32": descriptorpb.FieldDescriptorProto_TYPE_FIXED32, "bool": descriptorpb.FieldDescriptorProto_TYPE_BOOL,
	"string": descriptorpb.FieldDescriptorProto_TYPE_STRING, "bytes": descriptorpb.FieldDescriptorProto_TYPE_BYTES,
	"uint32": descriptorpb.FieldDescriptorProto_TYPE_UINT32, "sfixed32": descriptorpb.FieldDescriptorProto_TYPE_SFIXED32,
	"sfixed64": descriptorpb.FieldDescriptorProto_TYPE_SFIXED64, "sint32": descriptorpb.FieldDescriptorProto_TYPE_SINT32,
	"sint64": descriptorpb.FieldDescriptorProto_TYPE_SINT64,
}

// setType sets the type of f from a scalar keyword or a type name.
func setType(f *descriptorpb.FieldDescriptorProto, typ string) {
	if t, ok := scalarTypes[typ]; ok {
		f.Type = t.Enum()
		return
	}
	if name, ok := strings.CutPrefix(typ, "group "); ok {
		f.Type = descriptorpb.FieldDescriptorProto_TYPE_GROUP.Enum()
		typ = name
	}
	f.TypeName = proto.String(typ) // the kind, message or enum, is resolved by protodesc
}

// message builds a message from fieldSpecs, nested messages and enums.
func message(name string, parts ...any) *descriptorpb.DescriptorProto {
	m := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	oneofs := map[string]int32{}
	var optionals []*descriptorpb.FieldDescriptorProto
	for _, part := range parts {
		switch p := part.(type) {
		case fieldSpec:
			f := &descriptorpb.FieldDescriptorProto{
				Name:     proto.String(p.name),
				JsonName: proto.String(jsonName(p.name)),
				Number:   proto.Int32(p.number),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}
			typ := p.typ
			switch {
			case strings.HasPrefix(typ, "repeated "):
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
				typ = strings.TrimPrefix(typ, "repeated ")
			case strings.HasPrefix(typ, "required "):
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
				typ = strings.TrimPrefix(typ, "required ")
			case strings.HasPrefix(typ, "optional "):
				f.Proto3Optional = proto.Bool(true)
				optionals = append(optionals, f)
				typ = strings.TrimPrefix(typ, "optional ")
			case strings.HasPrefix(typ, "map<"):
				key, value, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(typ, "map<"), ">"), ", ")
				entry := message(mapEntryName(p.name), field("key", 1, key), field("value", 2, value))
				entry.Options = &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}
				m.NestedType = append(m.NestedType, entry)
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
				typ = name + "." + entry.GetName()
			}
			setType(f, typ)
			if p.oneof != "" {
				i, ok := oneofs[p.oneof]
				if !ok {
					i = int32(len(m.OneofDecl))
					oneofs[p.oneof] = i
					m.OneofDecl = append(m.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(p.oneof)})
				}
				f.OneofIndex = proto.Int32(i)
			}
			m.Field = append(m.Field, f)
		case *descriptorpb.DescriptorProto:
			m.NestedType = append(m.NestedType, p)
		case *descriptorpb.EnumDescriptorProto:
			m.EnumType = append(m.EnumType, p)
		default:
			panic("message: unexpected part")
		}
	}
	// Synthetic oneofs of proto3 optional fields come after the real ones.
	for _, f := range optionals {
		f.OneofIndex = proto.Int32(int32(len(m.OneofDecl)))
		m.OneofDecl = append(m.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String("_" + f.GetName())})
	}
	// The members of a oneof are declared together, where its first one is.
	var fields []*descriptorpb.FieldDescriptorProto
	done := map[int32]bool{}
	for _, f := range m.Field {
		if f.OneofIndex == nil {
			fields = append(fields, f)
			continue
		}
		if i := f.GetOneofIndex(); !done[i] {
			done[i] = true
			for _, g := range m.Field {
				if g.OneofIndex != nil && g.GetOneofIndex() == i {
					fields = append(fields, g)
				}
			}
		}
	}
	m.Field = fields
	return m
}

// enum builds an enum from name, number pairs.
func enum(name string, values ...any) *descriptorpb.EnumDescriptorProto {
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
	for i := 0; i < len(values); i += 2 {
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{
			Name:   proto.String(values[i].(string)),
			Number: proto.Int32(int32(values[i+1].(int))),
		})
	}
	return e
}

type rpcSpec struct {
	name, input, output          string
	clientStreams, serverStreams bool
}

func service(name string, rpcs ...rpcSpec) *descriptorpb.ServiceDescriptorProto {
	s := &descriptorpb.ServiceDescriptorProto{Name: proto.String(name)}
	for _, r := range rpcs {
		s.Method = append(s.Method, &descriptorpb.MethodDescriptorProto{
			Name:            proto.String(r.name),
			InputType:       proto.String(r.input),
			OutputType:      proto.String(r.output),
			ClientStreaming: proto.Bool(r.clientStreams),
			ServerStreaming: proto.Bool(r.serverStreams),
		})
	}
	return s
}

// file builds a file of package pkg, proto3 unless a syntax part says
// otherwise.
func file(name, pkg string, parts ...any) *descriptorpb.FileDescriptorProto {
	f := &descriptorpb.FileDescriptorProto{Name: proto.String(name), Package: proto.String(pkg), Syntax: proto.String("proto3")}
	for _, part := range parts {
		switch p := part.(type) {
		case syntax:
			f.Syntax = proto.String(string(p))
		case imports:
			f.Dependency = append(f.Dependency, p...)
		case *descriptorpb.DescriptorProto:
			f.MessageType = append(f.MessageType, p)
		case *descriptorpb.EnumDescriptorProto:
			f.EnumType = append(f.EnumType, p)
		case *descriptorpb.ServiceDescriptorProto:
			f.Service = append(f.Service, p)
		default:
			panic("file: unexpected part")
		}
	}
	return f
}

// mapEntryName is protoc's name of a map field's entry message.
func mapEntryName(field string) string {
	var b strings.Builder
	upper := true
	for _, c := range field {
		switch {
		case c == '_':
			upper = true
		case upper && 'a' <= c && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
			upper = false
		default:
			b.WriteRune(c)
			upper = false
		}
	}
	return b.String() + "Entry"
}

// jsonName is protoc's JSON name of a field.
func jsonName(field string) string {
	var b strings.Builder
	upper := false
	for _, c := range field {
		switch {
		case c == '_':
			upper = true
		case upper && 'a' <= c && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
			upper = false
		default:
			b.WriteRune(c)
			upper = false
		}
	}
	return b.String()
}

// buildFiles builds files, with the well-known types they import.
func buildFiles(t testing.TB, files ...*descriptorpb.FileDescriptorProto) *protoregistry.Files {
	t.Helper()
	reg, err := newFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		t.Fatalf("test schema: %v", err)
	}
	return reg
}

func findMessage(t testing.TB, files *protoregistry.Files, name protoreflect.FullName) protoreflect.MessageDescriptor {
	t.Helper()
	d, err := files.FindDescriptorByName(name)
	if err != nil {
		t.Fatalf("test schema: %s: %v", name, err)
	}
	return d.(protoreflect.MessageDescriptor)
}

// pair builds the messages web.v1.Ticket and internal.v1.Ticket from the
// parts of two files: a public file in package web.v1 and a backend file in
// package internal.v1, both importing every well-known type.
func pair(t testing.TB, public, backend []any) (pub, back protoreflect.MessageDescriptor) {
	t.Helper()
	wkt := imports{"google/protobuf/any.proto", "google/protobuf/duration.proto", "google/protobuf/empty.proto",
		"google/protobuf/struct.proto", "google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto"}
	files := buildFiles(t,
		file("web.proto", "web.v1", append([]any{wkt}, public...)...),
		file("internal.proto", "internal.v1", append([]any{wkt}, backend...)...),
	)
	return findMessage(t, files, "web.v1.Ticket"), findMessage(t, files, "internal.v1.Ticket")
}
