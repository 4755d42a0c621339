package server

import (
	"fmt"
	"sync/atomic"

	"connectrpc.com/connect/v2"
	"connectrpc.com/grpcreflect/v2"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// publicSchema is the schema server reflection describes: the files that
// declare the served services and, transitively, the files they import
// (well-known types, shared messages). Every other file, symbol and
// extension is not found, though the binary links it: a gateway links its
// backends' schemas, and reflection must not describe their internal
// fields.
//
// Reads are lock-free: each mount publishes a new, immutable publicFiles.
// Writers (Server.Mount, under Server.mu) are serialized by their caller.
type publicSchema struct {
	files atomic.Pointer[publicFiles]
}

var (
	_ protodesc.Resolver            = (*publicSchema)(nil)
	_ grpcreflect.ExtensionResolver = (*publicSchema)(nil)
)

// publicFiles is one immutable snapshot of the public schema.
type publicFiles struct {
	paths map[string]protoreflect.FileDescriptor
	files *protoregistry.Files
	types *protoregistry.Types // the extensions the files declare
}

// newPublicSchema returns the schema of the services of specs.
func newPublicSchema(specs ...connect.Spec) (*publicSchema, error) {
	empty := &publicFiles{
		paths: map[string]protoreflect.FileDescriptor{},
		files: new(protoregistry.Files),
		types: new(protoregistry.Types),
	}
	next, err := empty.with(specs)
	if err != nil {
		return nil, err
	}
	p := new(publicSchema)
	p.files.Store(next)
	return p, nil
}

// reflectionOptions makes reflection resolve files, symbols and extensions
// in the public schema only.
func (p *publicSchema) reflectionOptions() []grpcreflect.Option {
	return []grpcreflect.Option{
		grpcreflect.WithDescriptorResolver(p),
		grpcreflect.WithExtensionResolver(p),
	}
}

// load returns the current snapshot.
func (p *publicSchema) load() *publicFiles { return p.files.Load() }

// store publishes next, built by load().with.
func (p *publicSchema) store(next *publicFiles) { p.files.Store(next) }

// with returns a snapshot holding f's files, those of the services of
// specs and files, with their imports. Specs whose Schema is not a protobuf method
// add nothing: reflection lists those services but cannot describe them.
// It fails when a new file declares a name an older one already declares.
func (f *publicFiles) with(specs []connect.Spec, files ...protoreflect.FileDescriptor) (*publicFiles, error) {
	var added []protoreflect.FileDescriptor
	seen := map[string]bool{}
	var walk func(protoreflect.FileDescriptor)
	walk = func(fd protoreflect.FileDescriptor) {
		if fd == nil || fd.IsPlaceholder() || seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		if _, ok := f.paths[fd.Path()]; !ok {
			added = append(added, fd)
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			walk(imports.Get(i).FileDescriptor)
		}
	}
	for _, spec := range specs {
		if method, ok := spec.Schema.(protoreflect.MethodDescriptor); ok {
			walk(method.ParentFile())
		}
	}
	for _, fd := range files {
		walk(fd)
	}
	if len(added) == 0 {
		return f, nil
	}
	next := &publicFiles{
		paths: make(map[string]protoreflect.FileDescriptor, len(f.paths)+len(added)),
		files: new(protoregistry.Files),
		types: new(protoregistry.Types),
	}
	// Registries cannot be copied: rebuild them. There are a few dozen
	// files at most, and services are mounted once, before serving.
	for _, fd := range f.paths {
		if err := next.add(fd); err != nil {
			return nil, err
		}
	}
	for _, fd := range added {
		if err := next.add(fd); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// add registers fd and the extensions it declares.
func (f *publicFiles) add(fd protoreflect.FileDescriptor) error {
	if err := f.files.RegisterFile(fd); err != nil {
		return fmt.Errorf("reflection of %s: %w", fd.Path(), err)
	}
	f.paths[fd.Path()] = fd
	return registerExtensions(f.types, fd.Extensions(), fd.Messages())
}

// registerExtensions registers exts and those nested in msgs, recursively.
func registerExtensions(types *protoregistry.Types, exts protoreflect.ExtensionDescriptors, msgs protoreflect.MessageDescriptors) error {
	for i := range exts.Len() {
		// Reflection needs only the descriptor, not the Go type.
		xd := exts.Get(i)
		if err := types.RegisterExtension(dynamicpb.NewExtensionType(xd)); err != nil {
			return fmt.Errorf("reflection of %s: %w", xd.FullName(), err)
		}
	}
	for i := range msgs.Len() {
		md := msgs.Get(i)
		if err := registerExtensions(types, md.Extensions(), md.Messages()); err != nil {
			return err
		}
	}
	return nil
}

// The lookups answer protoregistry.NotFound for anything outside the public
// schema: the same not_found as for a name no schema declares, so a client
// cannot tell the two apart.

// FindFileByPath returns the public file at path.
func (p *publicSchema) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	fd, err := p.load().files.FindFileByPath(path)
	if err != nil {
		return nil, protoregistry.NotFound
	}
	return fd, nil
}

// FindDescriptorByName returns the descriptor of name if a public file
// declares it.
func (p *publicSchema) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	d, err := p.load().files.FindDescriptorByName(name)
	if err != nil {
		return nil, protoregistry.NotFound
	}
	return d, nil
}

// FindExtensionByName returns the extension field if a public file declares
// it.
func (p *publicSchema) FindExtensionByName(field protoreflect.FullName) (protoreflect.ExtensionType, error) {
	xt, err := p.load().types.FindExtensionByName(field)
	if err != nil {
		return nil, protoregistry.NotFound
	}
	return xt, nil
}

// FindExtensionByNumber returns the extension field of message if a public
// file declares it.
func (p *publicSchema) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	xt, err := p.load().types.FindExtensionByNumber(message, field)
	if err != nil {
		return nil, protoregistry.NotFound
	}
	return xt, nil
}

// RangeExtensionsByMessage calls fn for each extension of message that a
// public file declares.
func (p *publicSchema) RangeExtensionsByMessage(message protoreflect.FullName, fn func(protoreflect.ExtensionType) bool) {
	p.load().types.RangeExtensionsByMessage(message, fn)
}
