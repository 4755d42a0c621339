package routes

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Copier copies the fields a public message type declares between it and a
// backend message type. It is compiled and validated once by [NewCopier] and
// is safe for concurrent use.
type Copier struct {
	public, backend protoreflect.MessageDescriptor
	plan            *plan
}

// Option configures how [NewCopier] and [CheckMethod] validate a pair of types.
type Option interface {
	apply(*config)
}

type config struct {
	allowDynamic bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// AllowDynamic lets public fields be google.protobuf.Any, Struct, Value or
// ListValue. They are refused by default: they carry arbitrary values, often
// internal types, whose contents the public schema cannot name.
func AllowDynamic() Option {
	return optionFunc(func(c *config) { c.allowDynamic = true })
}

// NewCopier compiles the copy between a public and a backend message type.
// It returns a [*MismatchError] if the backend type cannot fill a field the
// public type declares.
func NewCopier(public, backend protoreflect.MessageDescriptor, opts ...Option) (*Copier, error) {
	var cfg config
	for _, o := range opts {
		o.apply(&cfg)
	}
	c := &compiler{cfg: cfg, root: public.FullName(), plans: make(map[messagePair]*plan)}
	p, err := c.compile(public, backend)
	if err != nil {
		return nil, err
	}
	return &Copier{public: public, backend: backend, plan: p}, nil
}

// Public is the public message type the copier was compiled for.
func (c *Copier) Public() protoreflect.MessageDescriptor { return c.public }

// Backend is the backend message type the copier was compiled for.
func (c *Copier) Backend() protoreflect.MessageDescriptor { return c.backend }

// ToPublic fills dst, a new public message, from src, a backend message: for
// every field the public type declares and src has, recursively. Enum numbers
// the public enum does not declare become the enum's zero value, bytes are
// copied, and unknown fields are left behind.
//
// dst and src must be messages of the exact descriptors the copier was
// compiled from (dynamicpb messages of them, or their generated types);
// ToPublic panics otherwise, as protoreflect does for a foreign field.
func (c *Copier) ToPublic(dst, src protoreflect.Message) {
	checkDescriptor("ToPublic", "dst", dst, c.public)
	checkDescriptor("ToPublic", "src", src, c.backend)
	c.plan.copy(dst, src, true)
}

// ToBackend fills dst, a new backend message, from src, a public message: the
// same walk of the public type's fields as [Copier.ToPublic]. Enum numbers the
// public enum does not declare become the backend enum's zero value, so a
// browser cannot select a value its schema does not offer.
func (c *Copier) ToBackend(dst, src protoreflect.Message) {
	checkDescriptor("ToBackend", "dst", dst, c.backend)
	checkDescriptor("ToBackend", "src", src, c.public)
	c.plan.copy(dst, src, false)
}

// checkDescriptor panics unless m is a message of want. Field descriptors
// belong to one descriptor object, so a message of another descriptor with
// the same name would panic later, less clearly.
func checkDescriptor(op, arg string, m protoreflect.Message, want protoreflect.MessageDescriptor) {
	if got := m.Descriptor(); got != want {
		panic("routes: " + op + ": " + arg + " is a " + string(got.FullName()) +
			", not a message of the " + string(want.FullName()) + " descriptor the copier was compiled from")
	}
}

// plan is the compiled copy between one public and one backend message type.
// Plans of message fields point to each other, so recursive types share them.
type plan struct {
	fields []fieldPlan
	// dense and sparse look up the backend field numbers of an encoded
	// answer for [Copier.ToPublicWire]; built by indexWire at compile time.
	dense  []wireField
	sparse map[protowire.Number]wireField
}

// shape is a field's cardinality as the copy sees it.
type shape uint8

const (
	singular shape = iota
	list
	mapField
)

func (s shape) String() string {
	switch s {
	case list:
		return "repeated"
	case mapField:
		return "a map"
	}
	return "singular"
}

func shapeOf(fd protoreflect.FieldDescriptor) shape {
	switch {
	case fd.IsMap():
		return mapField
	case fd.IsList():
		return list
	}
	return singular
}

// fieldPlan copies one public field from or to its backend field.
type fieldPlan struct {
	public, backend protoreflect.FieldDescriptor
	shape           shape
	// value copies the field's value, each element of a list, or each value
	// of a map (keys have the same kind on both sides and are copied as is).
	value valuePlan
}

// op says how a single value is copied.
type op uint8

const (
	opAsIs    op = iota // numbers, bools and strings: immutable values
	opBytes             // a new slice, so dst never aliases src's buffer
	opEnum              // filtered by the public enum's numbers
	opMessage           // a new message filled by a nested plan
)

type valuePlan struct {
	op      op
	enum    *enumPlan
	message *plan
}

// copy fills dst from src over the fields of p, in the direction toPublic says.
func (p *plan) copy(dst, src protoreflect.Message, toPublic bool) {
	for i := range p.fields {
		f := &p.fields[i]
		dfd, sfd := f.backend, f.public
		if toPublic {
			dfd, sfd = f.public, f.backend
		}
		if !src.Has(sfd) {
			continue
		}
		switch f.shape {
		case singular:
			if f.value.op == opMessage {
				f.value.message.copy(dst.Mutable(dfd).Message(), src.Get(sfd).Message(), toPublic)
				continue
			}
			dst.Set(dfd, f.value.convert(src.Get(sfd), toPublic))
		case list:
			sl, dl := src.Get(sfd).List(), dst.Mutable(dfd).List()
			n := sl.Len()
			if f.value.op == opMessage {
				for j := range n {
					e := dl.NewElement()
					f.value.message.copy(e.Message(), sl.Get(j).Message(), toPublic)
					dl.Append(e)
				}
				continue
			}
			for j := range n {
				dl.Append(f.value.convert(sl.Get(j), toPublic))
			}
		case mapField:
			copyMap(dst.Mutable(dfd).Map(), src.Get(sfd).Map(), &f.value, toPublic)
		}
	}
}

func copyMap(dm, sm protoreflect.Map, v *valuePlan, toPublic bool) {
	sm.Range(func(k protoreflect.MapKey, sv protoreflect.Value) bool {
		if v.op == opMessage {
			dv := dm.NewValue()
			v.message.copy(dv.Message(), sv.Message(), toPublic)
			dm.Set(k, dv)
			return true
		}
		dm.Set(k, v.convert(sv, toPublic))
		return true
	})
}

// convert returns the value to store for a non-message value x.
func (v *valuePlan) convert(x protoreflect.Value, toPublic bool) protoreflect.Value {
	switch v.op {
	case opBytes:
		return protoreflect.ValueOfBytes(bytes.Clone(x.Bytes()))
	case opEnum:
		return protoreflect.ValueOfEnum(v.enum.filter(x.Enum(), toPublic))
	}
	return x
}

// enumPlan holds the numbers a public enum declares, which validation has
// checked the backend enum declares with the same names.
type enumPlan struct {
	dense  []bool // dense[n] for 0 <= n < len(dense)
	sparse map[protoreflect.EnumNumber]bool
	// publicZero and backendZero are the enums' zero values: their first
	// values, which proto3 and open enums require to be 0.
	publicZero, backendZero protoreflect.EnumNumber
}

// maxDense bounds the slice of enum numbers looked up by index.
const maxDense = 256

func newEnumPlan(public, backend protoreflect.EnumDescriptor) *enumPlan {
	e := &enumPlan{
		publicZero:  public.Values().Get(0).Number(),
		backendZero: backend.Values().Get(0).Number(),
	}
	values := public.Values()
	for i := range values.Len() {
		n := values.Get(i).Number()
		if n >= 0 && n < maxDense {
			if int(n) >= len(e.dense) {
				e.dense = append(e.dense, make([]bool, int(n)+1-len(e.dense))...)
			}
			e.dense[n] = true
			continue
		}
		if e.sparse == nil {
			e.sparse = make(map[protoreflect.EnumNumber]bool)
		}
		e.sparse[n] = true
	}
	return e
}

// filter returns n if the public enum declares it, else the zero value of
// the destination's enum.
func (e *enumPlan) filter(n protoreflect.EnumNumber, toPublic bool) protoreflect.EnumNumber {
	if n >= 0 && int(n) < len(e.dense) && e.dense[n] || e.sparse[n] {
		return n
	}
	if toPublic {
		return e.publicZero
	}
	return e.backendZero
}
