package routes

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// BindingError reports a backend request field that cannot be bound to a
// session claim.
type BindingError struct {
	// Message is the backend request type.
	Message protoreflect.FullName
	// Field is the name of the bound field.
	Field string
	// Reason says why it cannot be bound.
	Reason string
}

func (e *BindingError) Error() string {
	return "cannot bind " + string(e.Message) + "." + e.Field + ": " + e.Reason
}

// CheckBinding validates that field, a field of the backend request, can be
// filled from a session claim: it must be a singular string or integer, and
// the public request must have no field of that name, so a browser cannot
// name another value (such as another user's account). It returns the field
// for [SetBinding], or a [*BindingError].
func CheckBinding(backendReq, publicReq protoreflect.MessageDescriptor, field string) (protoreflect.FieldDescriptor, error) {
	refuse := func(reason string) error {
		return &BindingError{Message: backendReq.FullName(), Field: field, Reason: reason}
	}
	fd := backendReq.Fields().ByName(protoreflect.Name(field))
	if fd == nil {
		return nil, refuse("backend request has no such field")
	}
	if s := shapeOf(fd); s != singular {
		return nil, refuse("is " + s.String() + "; a bound field must be a singular string or integer")
	}
	if fd.Kind() != protoreflect.StringKind && !isInteger(fd.Kind()) {
		return nil, refuse("is " + typeName(fd) + "; a bound field must be a singular string or integer")
	}
	if publicReq.Fields().ByName(fd.Name()) != nil {
		return nil, refuse("public request " + string(publicReq.FullName()) + " has a field of that name, so a browser could set it")
	}
	return fd, nil
}

func isInteger(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// ErrEmptyClaim is returned by [SetBinding] for an empty claim value: an empty
// id may mean "any" to a backend, so it is never bound.
var ErrEmptyClaim = errors.New("claim is empty")

// SetBinding sets fd, a field accepted by [CheckBinding], of dst, a backend
// request, to a claim's value, converted to the field's kind. Call it after
// [Copier.ToBackend], so the claim is what the backend sees. A claim that is
// empty, not valid UTF-8 for a string field, or not a decimal integer in the
// field's range for an integer field is an error; the error wraps
// [ErrEmptyClaim], [strconv.ErrSyntax] or [strconv.ErrRange] and does not
// repeat the claim.
func SetBinding(dst protoreflect.Message, fd protoreflect.FieldDescriptor, claim string) error {
	if claim == "" {
		return fmt.Errorf("binding %s: %w", fd.Name(), ErrEmptyClaim)
	}
	var v protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(claim) {
			return fmt.Errorf("binding %s: claim is not valid UTF-8", fd.Name())
		}
		v = protoreflect.ValueOfString(claim)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(claim, 10, 32)
		if err != nil {
			return claimError(fd, err)
		}
		v = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(claim, 10, 64)
		if err != nil {
			return claimError(fd, err)
		}
		v = protoreflect.ValueOfInt64(n)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(claim, 10, 32)
		if err != nil {
			return claimError(fd, err)
		}
		v = protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(claim, 10, 64)
		if err != nil {
			return claimError(fd, err)
		}
		v = protoreflect.ValueOfUint64(n)
	default:
		return fmt.Errorf("binding %s: field is %s, not a string or integer", fd.Name(), fd.Kind())
	}
	dst.Set(fd, v)
	return nil
}

// claimError reports a claim that is not an integer of fd's kind, wrapping
// strconv's ErrSyntax or ErrRange without the *strconv.NumError that quotes
// the claim.
func claimError(fd protoreflect.FieldDescriptor, err error) error {
	if ne, ok := errors.AsType[*strconv.NumError](err); ok {
		err = ne.Err
	}
	return fmt.Errorf("binding %s: claim is not a decimal %s: %w", fd.Name(), fd.Kind(), err)
}
