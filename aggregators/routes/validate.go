package routes

import (
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// MismatchError reports a public field that its backend type cannot fill, or
// a public type that is refused as such.
type MismatchError struct {
	// Message is the public message the copier was compiled for.
	Message protoreflect.FullName
	// Field is the path of the field from Message, such as
	// "ticket.comments[].author.email" or "labels{}.name": "[]" steps into a
	// repeated field's elements, "{}" into a map's values. It is empty when
	// Message itself is refused.
	Field string
	// Reason says what does not match.
	Reason string
}

func (e *MismatchError) Error() string {
	if e.Field == "" {
		return string(e.Message) + ": " + e.Reason
	}
	return string(e.Message) + " field " + e.Field + ": " + e.Reason
}

// The rules a public type must follow, checked field by field by compiler:
//   - every public field has a backend field of the same name (numbers may
//     differ), with the same kind (int32, sint32 and sfixed32 are different
//     kinds: the public schema repeats the backend's), the same cardinality
//     (singular, repeated or map; required on both sides or neither), and
//     for singular scalars the same presence (proto3 optional on both sides
//     or neither);
//   - map keys have the same kind, and map values follow the field rules;
//   - an enum's public values are backend values of the same name and number
//     (the backend may have more); enum types may differ in name;
//   - a message field's public type follows these rules against its backend
//     type, which may have more fields and another name; a well-known type
//     (google.protobuf.*) only matches itself, except that a public
//     google.protobuf.Empty matches any backend message;
//   - a field is in a oneof on one side only if it is on the other, and the
//     members of one public oneof belong to one backend oneof (which may have
//     more members), so one member at most is set on either side;
//   - google.protobuf.Any, Struct, Value and ListValue are refused unless
//     [AllowDynamic] is given.

// messagePair keys the plan cache: plans are shared by every field of the
// same pair of types, which is how recursive types compile.
type messagePair struct {
	public, backend protoreflect.MessageDescriptor
}

type enumPair struct {
	public, backend protoreflect.EnumDescriptor
}

// compiler builds and validates the plans of one [Copier].
type compiler struct {
	cfg   config
	root  protoreflect.FullName
	plans map[messagePair]*plan
	enums map[enumPair]*enumPlan
}

func (c *compiler) mismatch(path, reason string) error {
	return &MismatchError{Message: c.root, Field: path, Reason: reason}
}

// compile checks the root pair of message types and builds its plan.
func (c *compiler) compile(public, backend protoreflect.MessageDescriptor) (*plan, error) {
	if reason := c.checkMessageTypes(public, backend, "root"); reason != "" {
		return nil, c.mismatch("", reason)
	}
	return c.message(public, backend, "")
}

// message builds the plan of a pair of message types whose fields sit at
// path ("" for the root).
func (c *compiler) message(public, backend protoreflect.MessageDescriptor, path string) (*plan, error) {
	key := messagePair{public, backend}
	if p, ok := c.plans[key]; ok {
		return p, nil
	}
	fields := public.Fields()
	p := &plan{fields: make([]fieldPlan, 0, fields.Len())}
	c.plans[key] = p
	// oneofs matches the public oneofs to backend ones and back.
	var oneofs map[protoreflect.OneofDescriptor]oneofMatch
	if public.Oneofs().Len() > 0 {
		oneofs = make(map[protoreflect.OneofDescriptor]oneofMatch)
	}
	for i := range fields.Len() {
		pf := fields.Get(i)
		fieldPath := join(path, string(pf.Name()))
		bf := backend.Fields().ByName(pf.Name())
		if bf == nil {
			return nil, c.mismatch(fieldPath, "backend message "+string(backend.FullName())+" has no field "+strconv.Quote(string(pf.Name())))
		}
		if err := c.check(pf, bf, fieldPath); err != nil {
			return nil, err
		}
		if err := c.checkOneof(pf, bf, fieldPath, oneofs); err != nil {
			return nil, err
		}
		fp, err := c.field(pf, bf, fieldPath)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, fp)
	}
	p.indexWire(backend, oneofs)
	return p, nil
}

// oneofMatch records, for a public oneof, the backend oneof it matches, and
// for a backend oneof the public one; first is the public field that made
// the match.
type oneofMatch struct {
	other protoreflect.OneofDescriptor
	first protoreflect.Name
}

// realOneof returns the oneof fd is a member of, ignoring the synthetic
// oneofs of proto3 optional fields (they are presence, checked as such).
func realOneof(fd protoreflect.FieldDescriptor) protoreflect.OneofDescriptor {
	if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
		return od
	}
	return nil
}

// check compares the shape, kind and presence of a public field and of its
// backend field of the same name.
func (c *compiler) check(pf, bf protoreflect.FieldDescriptor, path string) error {
	ps, bs := shapeOf(pf), shapeOf(bf)
	if ps != bs {
		return c.mismatch(path, "is "+ps.String()+" but the backend field is "+bs.String())
	}
	if pr, br := pf.Cardinality() == protoreflect.Required, bf.Cardinality() == protoreflect.Required; pr != br {
		if pr {
			return c.mismatch(path, "is required but the backend field is not")
		}
		return c.mismatch(path, "is not required but the backend field is")
	}
	if ps == mapField {
		if pk, bk := pf.MapKey().Kind(), bf.MapKey().Kind(); pk != bk {
			return c.mismatch(path, "map key is "+pk.String()+" but the backend map key is "+bk.String())
		}
		if pv, bv := pf.MapValue(), bf.MapValue(); pv.Kind() != bv.Kind() {
			return c.mismatch(path, "map value is "+typeName(pv)+" but the backend map value is "+typeName(bv))
		}
		return nil
	}
	if pf.Kind() != bf.Kind() {
		return c.mismatch(path, "is "+typeName(pf)+" but the backend field is "+typeName(bf))
	}
	// Oneof members track presence; checkOneof compares them more precisely.
	inOneof := realOneof(pf) != nil || realOneof(bf) != nil
	if ps == singular && pf.Message() == nil && !inOneof && pf.HasPresence() != bf.HasPresence() {
		if pf.HasPresence() {
			return c.mismatch(path, "tracks presence (optional) but the backend field does not")
		}
		return c.mismatch(path, "does not track presence but the backend field does (optional)")
	}
	return nil
}

// checkOneof checks that a public field is in a oneof if and only if its
// backend field is, and that oneofs match one to one: the members of a
// public oneof are members of one backend oneof, and no other public oneof
// has members in it. One member at most is then set on either side.
func (c *compiler) checkOneof(pf, bf protoreflect.FieldDescriptor, path string, oneofs map[protoreflect.OneofDescriptor]oneofMatch) error {
	po, bo := realOneof(pf), realOneof(bf)
	switch {
	case po == nil && bo == nil:
		return nil
	case po == nil:
		return c.mismatch(path, "is not in a oneof but the backend field is in oneof "+strconv.Quote(string(bo.Name())))
	case bo == nil:
		return c.mismatch(path, "is in oneof "+strconv.Quote(string(po.Name()))+" but the backend field is not in a oneof")
	}
	if m, ok := oneofs[po]; ok && m.other != bo {
		return c.mismatch(path, "is in oneof "+strconv.Quote(string(po.Name()))+" with field "+strconv.Quote(string(m.first))+
			", but their backend fields are in different oneofs ("+strconv.Quote(string(m.other.Name()))+" and "+strconv.Quote(string(bo.Name()))+")")
	}
	if m, ok := oneofs[bo]; ok && m.other != po {
		return c.mismatch(path, "is in oneof "+strconv.Quote(string(po.Name()))+" but its backend field shares oneof "+strconv.Quote(string(bo.Name()))+
			" with the backend field of "+strconv.Quote(string(m.first))+", which is in oneof "+strconv.Quote(string(m.other.Name())))
	}
	if _, ok := oneofs[po]; !ok {
		oneofs[po] = oneofMatch{other: bo, first: pf.Name()}
		oneofs[bo] = oneofMatch{other: po, first: pf.Name()}
	}
	return nil
}

// field builds the plan of a field that check has accepted, checking and
// compiling the enum or message types it holds.
func (c *compiler) field(pf, bf protoreflect.FieldDescriptor, path string) (fieldPlan, error) {
	fp := fieldPlan{public: pf, backend: bf, shape: shapeOf(pf)}
	var err error
	switch fp.shape {
	case mapField:
		fp.value, err = c.value(pf.MapValue(), bf.MapValue(), path, path+"{}", "map value ")
	case list:
		fp.value, err = c.value(pf, bf, path, path+"[]", "")
	default:
		fp.value, err = c.value(pf, bf, path, path, "")
	}
	return fp, err
}

// value compiles the copy of a field's value, of its list elements or of its
// map values (what is "" or "map value "), whose own fields sit at inner.
func (c *compiler) value(pf, bf protoreflect.FieldDescriptor, path, inner, what string) (valuePlan, error) {
	switch pf.Kind() {
	case protoreflect.BytesKind:
		return valuePlan{op: opBytes}, nil
	case protoreflect.EnumKind:
		e, err := c.enum(pf.Enum(), bf.Enum(), path)
		return valuePlan{op: opEnum, enum: e}, err
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if reason := c.checkMessageTypes(pf.Message(), bf.Message(), what); reason != "" {
			return valuePlan{}, c.mismatch(path, reason)
		}
		p, err := c.message(pf.Message(), bf.Message(), inner)
		return valuePlan{op: opMessage, message: p}, err
	}
	return valuePlan{op: opAsIs}, nil
}

// checkMessageTypes applies the rules on message types as such, dynamic
// and well-known types, to the root (what is "root") or to the type of a
// field (what is "" or "map value "). It returns why they are refused, or "".
func (c *compiler) checkMessageTypes(public, backend protoreflect.MessageDescriptor, what string) string {
	pn, bn := public.FullName(), backend.FullName()
	subject := what + "is " + string(pn) + ", which"
	if what == "root" {
		subject = "the message"
	}
	if isDynamic(pn) && !c.cfg.allowDynamic {
		return subject + " carries arbitrary, possibly internal types; refused unless dynamic types are allowed"
	}
	if pn != bn && pn != "google.protobuf.Empty" && (isWellKnown(pn) || isWellKnown(bn)) {
		return subject + " is not backend type " + string(bn) + ": a well-known type only matches itself"
	}
	return ""
}

func isDynamic(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return true
	}
	return false
}

func isWellKnown(name protoreflect.FullName) bool {
	return name.Parent() == "google.protobuf"
}

// enum checks that every value of the public enum is a backend value of the
// same name and number.
func (c *compiler) enum(public, backend protoreflect.EnumDescriptor, path string) (*enumPlan, error) {
	key := enumPair{public, backend}
	if e, ok := c.enums[key]; ok {
		return e, nil
	}
	values := public.Values()
	for i := range values.Len() {
		pv := values.Get(i)
		value := "enum " + string(public.FullName()) + " value " + string(pv.Name()) + " = " + strconv.Itoa(int(pv.Number()))
		bv := backend.Values().ByName(pv.Name())
		if bv == nil {
			return nil, c.mismatch(path, value+": backend enum "+string(backend.FullName())+" has no value named "+string(pv.Name()))
		}
		if bv.Number() != pv.Number() {
			return nil, c.mismatch(path, value+": backend enum "+string(backend.FullName())+" has "+string(bv.Name())+" = "+strconv.Itoa(int(bv.Number())))
		}
	}
	e := newEnumPlan(public, backend)
	if c.enums == nil {
		c.enums = make(map[enumPair]*enumPlan)
	}
	c.enums[key] = e
	return e, nil
}

// typeName names a field's kind, with its type for enums and messages.
func typeName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return fd.Kind().String() + " " + string(fd.Message().FullName())
	}
	return fd.Kind().String()
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
