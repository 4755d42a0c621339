package routes

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// SeparationError reports a public method that reaches into its backend's
// schema: a public type declared in the backend's package would be copied
// with all of its (internal) fields, and a public file that imports the
// backend's file would be described by server reflection.
type SeparationError struct {
	// Field is the path of the offending public field, empty for an import.
	Field string
	// Reason says what is shared.
	Reason string
}

func (e *SeparationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return "field " + e.Field + ": " + e.Reason
}

// CheckSeparation refuses a public method whose request or answer uses a
// message or enum of the backend method's package, or whose file imports
// the backend method's file. Well-known types (google.protobuf) are shared
// by design.
func CheckSeparation(public, backend protoreflect.MethodDescriptor) error {
	backendFile := backend.ParentFile()
	pkg := backendFile.Package()
	if err := checkImports(public.ParentFile(), backendFile, map[string]bool{}); err != nil {
		return err
	}
	seen := map[protoreflect.FullName]bool{}
	for _, m := range []protoreflect.MessageDescriptor{public.Input(), public.Output()} {
		if err := checkTypes(m, pkg, string(m.Name()), seen); err != nil {
			return err
		}
	}
	return nil
}

func checkImports(f, backend protoreflect.FileDescriptor, seen map[string]bool) error {
	if seen[f.Path()] {
		return nil
	}
	seen[f.Path()] = true
	if f.Path() == backend.Path() {
		return &SeparationError{Reason: fmt.Sprintf("the public schema imports the backend's file %s, which reflection would then describe", backend.Path())}
	}
	imports := f.Imports()
	for i := range imports.Len() {
		if err := checkImports(imports.Get(i).FileDescriptor, backend, seen); err != nil {
			return err
		}
	}
	return nil
}

func checkTypes(m protoreflect.MessageDescriptor, backendPkg protoreflect.FullName, path string, seen map[protoreflect.FullName]bool) error {
	if seen[m.FullName()] || isWellKnown(m.FullName()) {
		return nil
	}
	seen[m.FullName()] = true
	if m.ParentFile().Package() == backendPkg {
		return &SeparationError{Field: path, Reason: fmt.Sprintf("type %s is declared in the backend's package %s; declare the public type in the public schema", m.FullName(), backendPkg)}
	}
	fields := m.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		p := path + "." + string(fields.Get(i).Name())
		if e := fd.Enum(); e != nil && e.ParentFile().Package() == backendPkg {
			return &SeparationError{Field: p, Reason: fmt.Sprintf("enum %s is declared in the backend's package %s; declare the public enum in the public schema", e.FullName(), backendPkg)}
		}
		if sub := fd.Message(); sub != nil {
			if err := checkTypes(sub, backendPkg, p, seen); err != nil {
				return err
			}
		}
	}
	return nil
}
