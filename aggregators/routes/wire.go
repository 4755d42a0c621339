package routes

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errWireDepth is returned for answers nested deeper than protobuf-go's own
// recursion limit.
var errWireDepth = errors.New("routes: malformed backend answer: exceeds the maximum recursion depth")

// maxDenseNumbers bounds the slice of backend field numbers looked up by
// index; plans with larger numbers use a map.
const maxDenseNumbers = 1024

// wireField is what a backend field number means to a plan: a field to
// decode, or a backend-only member of a oneof whose public members it
// clears (a backend message would keep only the last member set).
type wireField struct {
	field *fieldPlan
	clear protoreflect.OneofDescriptor // the public oneof, for a backend-only member
	// backend is the backend field, for the wire type of a clearing member.
	backend protoreflect.FieldDescriptor
}

// indexWire builds p's lookup from backend field numbers, once, when the
// plan is compiled. oneofs maps backend oneofs to the public oneofs they
// match.
func (p *plan) indexWire(backend protoreflect.MessageDescriptor, oneofs map[protoreflect.OneofDescriptor]oneofMatch) {
	add := func(num protowire.Number, w wireField) {
		if num < maxDenseNumbers {
			if int(num) >= len(p.dense) {
				p.dense = append(p.dense, make([]wireField, int(num)+1-len(p.dense))...)
			}
			p.dense[num] = w
			return
		}
		if p.sparse == nil {
			p.sparse = make(map[protowire.Number]wireField)
		}
		p.sparse[num] = w
	}
	inPlan := make(map[protowire.Number]bool, len(p.fields))
	for i := range p.fields {
		f := &p.fields[i]
		inPlan[f.backend.Number()] = true
		add(f.backend.Number(), wireField{field: f, backend: f.backend})
	}
	fields := backend.Fields()
	for i := range fields.Len() {
		bf := fields.Get(i)
		bo := realOneof(bf)
		if bo == nil || inPlan[bf.Number()] {
			continue
		}
		if m, ok := oneofs[bo]; ok {
			add(bf.Number(), wireField{clear: m.other, backend: bf})
		}
	}
}

func (p *plan) lookup(num protowire.Number) *wireField {
	if int(num) < len(p.dense) {
		if w := &p.dense[num]; w.backend != nil {
			return w
		}
		return nil
	}
	if w, ok := p.sparse[num]; ok {
		return &w
	}
	return nil
}

// ToPublicWire fills dst, a new public message, from b, the binary encoding
// of a backend message, without building the backend message: it gives what
// proto.Unmarshal into a backend message followed by [Copier.ToPublic] gives
// (fields the public type does not declare are skipped unparsed), and an
// error for malformed bytes.
func (c *Copier) ToPublicWire(dst protoreflect.Message, b []byte) error {
	checkDescriptor("ToPublicWire", "dst", dst, c.public)
	return c.plan.fromWire(dst, b, protowire.DefaultRecursionLimit)
}

func malformed(n int) error {
	return fmt.Errorf("routes: malformed backend answer: %w", protowire.ParseError(n))
}

var errFieldNumber = errors.New("routes: malformed backend answer: invalid field number")

// consumeTag reads the tag at the start of b and its length.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, malformed(n)
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, 0, errFieldNumber
	}
	return num, typ, n, nil
}

// fromWire merges the encoded message b into dst.
func (p *plan) fromWire(dst protoreflect.Message, b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		known := false
		if w := p.lookup(num); w != nil {
			var err error
			if w.field != nil {
				n, known, err = w.field.fromWire(dst, b, num, typ, depth)
				if err != nil {
					return err
				}
			} else if typ == wireType(w.backend.Kind()) {
				// A backend-only oneof member: parsed as the backend would
				// (an error where it errs), then it clears the public oneof.
				if _, n, err = scalarFromWire(b, typ, num, w.backend); err != nil {
					return err
				}
				if od := w.clear; od != nil {
					if fd := dst.WhichOneof(od); fd != nil {
						dst.Clear(fd)
					}
				}
				known = true
			}
		}
		if !known {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return malformed(n)
			}
		}
		b = b[n:]
	}
	return nil
}

// fromWire decodes one occurrence of f's backend field into dst. known is
// false for a wire type the backend field does not accept: protobuf keeps
// such a value as an unknown field, which the copy leaves behind.
func (f *fieldPlan) fromWire(dst protoreflect.Message, b []byte, num protowire.Number, typ protowire.Type, depth int) (n int, known bool, err error) {
	switch f.shape {
	case mapField:
		if typ != protowire.BytesType {
			return 0, false, nil
		}
		entry, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, false, malformed(n)
		}
		return n, true, f.mapEntryFromWire(dst.Mutable(f.public).Map(), entry, depth)
	case list:
		kind := f.backend.Kind()
		if f.value.op == opMessage {
			if typ != wireType(kind) {
				return 0, false, nil
			}
			v, n, err := scalarFromWire(b, typ, num, f.backend)
			if err != nil {
				return 0, false, err
			}
			l := dst.Mutable(f.public).List()
			e := l.NewElement()
			if err := f.value.message.fromWire(e.Message(), v.Bytes(), depth); err != nil {
				return 0, false, err
			}
			l.Append(e)
			return n, true, nil
		}
		if typ == protowire.BytesType && isPackable(kind) {
			packed, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, false, malformed(n)
			}
			l := dst.Mutable(f.public).List()
			ptyp := wireType(kind)
			for len(packed) > 0 {
				v, m, err := scalarFromWire(packed, ptyp, num, f.backend)
				if err != nil {
					return 0, false, err
				}
				packed = packed[m:]
				l.Append(f.value.fromBackend(v))
			}
			return n, true, nil
		}
		if typ != wireType(kind) {
			return 0, false, nil
		}
		v, n, err := scalarFromWire(b, typ, num, f.backend)
		if err != nil {
			return 0, false, err
		}
		dst.Mutable(f.public).List().Append(f.value.fromBackend(v))
		return n, true, nil
	}
	if typ != wireType(f.backend.Kind()) {
		return 0, false, nil
	}
	v, n, err := scalarFromWire(b, typ, num, f.backend)
	if err != nil {
		return 0, false, err
	}
	if f.value.op == opMessage {
		// Occurrences of a singular message merge, as protobuf decodes them.
		return n, true, f.value.message.fromWire(dst.Mutable(f.public).Message(), v.Bytes(), depth)
	}
	dst.Set(f.public, f.value.fromBackend(v))
	return n, true, nil
}

// mapEntryFromWire decodes one map entry (key 1, value 2, either possibly
// absent or repeated) into m, as protobuf does.
func (f *fieldPlan) mapEntryFromWire(m protoreflect.Map, b []byte, depth int) error {
	keyField, valField := f.backend.MapKey(), f.backend.MapValue()
	var key, val protoreflect.Value
	haveKey, haveVal := false, false
	isMessage := f.value.op == opMessage
	if isMessage {
		val = m.NewValue()
	}
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		known := false
		switch num {
		case 1:
			if typ == wireType(keyField.Kind()) {
				v, m, err := scalarFromWire(b, typ, num, keyField)
				if err != nil {
					return err
				}
				key, haveKey, known, n = v, true, true, m
			}
		case 2:
			if typ == wireType(valField.Kind()) {
				v, m, err := scalarFromWire(b, typ, num, valField)
				if err != nil {
					return err
				}
				if isMessage {
					if err := f.value.message.fromWire(val.Message(), v.Bytes(), depth); err != nil {
						return err
					}
				} else {
					val = v
				}
				haveVal, known, n = true, true, m
			}
		}
		if !known {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return malformed(n)
			}
		}
		b = b[n:]
	}
	if !haveKey {
		key = keyField.Default()
	}
	if !isMessage {
		if !haveVal {
			val = valField.Default()
		}
		val = f.value.fromBackend(val)
	}
	m.Set(key.MapKey(), val)
	return nil
}

// fromBackend converts a decoded backend scalar as [Copier.ToPublic] does.
func (v *valuePlan) fromBackend(x protoreflect.Value) protoreflect.Value {
	switch v.op {
	case opEnum:
		return protoreflect.ValueOfEnum(v.enum.filter(x.Enum(), true))
	case opBytes:
		// scalarFromWire already copied the bytes.
		return x
	}
	return x
}

// wireType is the wire type of a non-packed value of kind k.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.VarintType
}

func isPackable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// scalarFromWire decodes one value of fd's kind, whose wire type typ the
// caller has checked. Bytes are copied; messages and groups are returned
// as their encoded bytes.
func scalarFromWire(b []byte, typ protowire.Type, num protowire.Number, fd protoreflect.FieldDescriptor) (protoreflect.Value, int, error) {
	var v uint64
	var n int
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(b)
		v = uint64(x)
	case protowire.Fixed64Type:
		v, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		var s []byte
		s, n = protowire.ConsumeBytes(b)
		if n < 0 {
			return protoreflect.Value{}, 0, malformed(n)
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			if enforceUTF8(fd) && !utf8.Valid(s) {
				return protoreflect.Value{}, 0, fmt.Errorf("routes: malformed backend answer: field %s contains invalid UTF-8", fd.FullName())
			}
			return protoreflect.ValueOfString(string(s)), n, nil
		case protoreflect.BytesKind:
			return protoreflect.ValueOfBytes(append([]byte{}, s...)), n, nil
		}
		return protoreflect.ValueOfBytes(s), n, nil
	case protowire.StartGroupType:
		var s []byte
		s, n = protowire.ConsumeGroup(num, b)
		if n < 0 {
			return protoreflect.Value{}, 0, malformed(n)
		}
		return protoreflect.ValueOfBytes(s), n, nil
	default:
		return protoreflect.Value{}, 0, errors.New("routes: malformed backend answer: unexpected wire type")
	}
	if n < 0 {
		return protoreflect.Value{}, 0, malformed(n)
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(protowire.DecodeBool(v)), n, nil
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(v)), n, nil
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(int32(v)), n, nil
	case protoreflect.Sint32Kind:
		return protoreflect.ValueOfInt32(int32(protowire.DecodeZigZag(v & math.MaxUint32))), n, nil
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(uint32(v)), n, nil
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(int64(v)), n, nil
	case protoreflect.Sint64Kind:
		return protoreflect.ValueOfInt64(protowire.DecodeZigZag(v)), n, nil
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64(v), n, nil
	case protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(v)), n, nil
	case protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(v)), n, nil
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(math.Float32frombits(uint32(v))), n, nil
	case protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(v)), n, nil
	case protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(v), n, nil
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(math.Float64frombits(v)), n, nil
	}
	return protoreflect.Value{}, 0, errors.New("routes: malformed backend answer: unexpected field kind")
}

// enforceUTF8 reports whether protobuf-go rejects invalid UTF-8 in fd, as
// its internal strs.EnforceUTF8 decides: proto3 strings, and strings whose
// edition features ask for validation.
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
