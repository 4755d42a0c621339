package routes

import (
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The well-known types a descriptor set may import without including
	// (buf build --exclude-imports): see addWellKnownImports.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/apipb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/sourcecontextpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/typepb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// LoadFiles reads a descriptor set: a binary FileDescriptorSet, such as the
// image `buf build -o schemas.binpb` writes or `protoc
// --descriptor_set_out --include_imports`. Imports of the well-known types
// (google/protobuf/*.proto) that the set leaves out are taken from the
// protobuf module; any other missing import is an error.
func LoadFiles(path string) (*protoregistry.Files, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("descriptor set %s is not a binary FileDescriptorSet (buf build -o FILE.binpb): %w", path, err)
	}
	if len(set.GetFile()) == 0 {
		return nil, fmt.Errorf("descriptor set %s holds no files", path)
	}
	files, err := newFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("descriptor set %s: %w", path, err)
	}
	return files, nil
}

// newFiles builds the files of set, adding the well-known types it imports
// without including them.
func newFiles(set *descriptorpb.FileDescriptorSet) (*protoregistry.Files, error) {
	addWellKnownImports(set)
	return protodesc.NewFiles(set)
}

// addWellKnownImports appends to set the google/protobuf/*.proto files that
// its files import but it does not hold, from protoregistry.GlobalFiles.
// Only those: a team's own imports must come from its own build, not from
// whatever this binary happens to link.
func addWellKnownImports(set *descriptorpb.FileDescriptorSet) {
	have := make(map[string]bool, len(set.GetFile()))
	for _, f := range set.GetFile() {
		have[f.GetName()] = true
	}
	for i := 0; i < len(set.File); i++ { // set.File grows: imports of imports
		for _, dep := range set.File[i].GetDependency() {
			if have[dep] || !strings.HasPrefix(dep, "google/protobuf/") {
				continue
			}
			fd, err := protoregistry.GlobalFiles.FindFileByPath(dep)
			if err != nil {
				continue // protodesc names the missing import
			}
			have[dep] = true
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
	}
}

// FindMethod finds a method by its service's full name and its name,
// "package.Service/Method" (a leading "/", as in a procedure, is allowed).
func FindMethod(files *protoregistry.Files, name string) (protoreflect.MethodDescriptor, error) {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok || service == "" || method == "" || !protoreflect.FullName(service).IsValid() || !protoreflect.Name(method).IsValid() {
		return nil, fmt.Errorf("method %q is not of the form package.Service/Method", name)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("service %s not found in the descriptor set", service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is %s, not a service", service, describe(d))
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, fmt.Errorf("method %s not found in service %s", method, service)
	}
	return md, nil
}

// describe names the kind of a descriptor that is not the one looked for.
func describe(d protoreflect.Descriptor) string {
	switch d.(type) {
	case protoreflect.MessageDescriptor:
		return "a message"
	case protoreflect.EnumDescriptor:
		return "an enum"
	case protoreflect.EnumValueDescriptor:
		return "an enum value"
	case protoreflect.FieldDescriptor:
		return "a field"
	case protoreflect.OneofDescriptor:
		return "a oneof"
	case protoreflect.MethodDescriptor:
		return "a method"
	}
	return "another kind of descriptor"
}
