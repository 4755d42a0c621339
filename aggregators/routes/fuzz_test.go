package routes

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzCopier feeds the copier random backend bytes and random schemas.
//
// With an empty schema, msg is decoded as a backend answer of the test
// schemas (routestest.backend.v1.GetTicketResponse) and copied to the public
// one. Otherwise schema drives randomSchemas, which builds a backend file
// and a public file derived from it, mostly compatible and sometimes not;
// if they compile, msg drives fillBackend, which fills a backend message
// whose internal values carry the marker, and msg is also decoded as one.
// Either way the public message must hold nothing its schema does not
// declare (checkPublic) and survive a copy back and forth unchanged.
func FuzzCopier(f *testing.F) {
	f.Add([]byte{}, canaryBytes(f, nil))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{}, []byte{0x0a, 0x02, 0xa2, 0x01}) // ticket{ field 20 truncated }
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, []byte("0123456789abcdef0123456789abcdef"))
	f.Add([]byte{0xff, 0x3f, 0x11, 0x5a, 0x33, 0x80, 0x07, 0x21, 0x99, 0x42, 0x12, 0x6e, 0x04, 0x55}, bytes.Repeat([]byte{0x81, 0x02, 0x17}, 40))
	f.Add(bytes.Repeat([]byte{7, 3}, 30), bytes.Repeat([]byte{0xaa, 0x01}, 60))
	f.Add([]byte{2, 6, 0, 0, 0, 6, 1, 3, 6, 2, 5, 4, 6, 3, 7, 2}, bytes.Repeat([]byte{1}, 64))
	copier := responseCopier(f)
	f.Fuzz(func(t *testing.T, schema, msg []byte) {
		fuzzCopy(t, copier, schema, msg)
	})
}

// fuzzCopy runs one input of FuzzCopier; copier is the test schemas' own.
// It reports whether the input's schemas, if any, compiled.
func fuzzCopy(t *testing.T, copier *Copier, schema, msg []byte) (compiled bool) {
	if len(schema) == 0 {
		src := dynamicpb.NewMessage(backendResponse)
		if proto.Unmarshal(msg, src) == nil {
			copyAndCheck(t, copier, src, false)
		}
		checkWire(t, copier, msg)
		return true
	}
	backFile, pubFile := randomSchemas(&fuzzBytes{b: schema})
	files, err := newFiles(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{backFile, pubFile}})
	if err != nil {
		t.Fatalf("randomSchemas built an invalid schema: %v\nbackend: %v\npublic: %v", err, backFile, pubFile)
	}
	back := findMessage(t, files, "fz.back.M0")
	pub := findMessage(t, files, "fz.pub.M0")
	c, err := NewCopier(pub, back)
	if err != nil {
		if _, ok := errors.AsType[*MismatchError](err); !ok {
			t.Fatalf("NewCopier error is a %T: %v", err, err)
		}
		return false
	}
	// Backend bytes as they come.
	if src := dynamicpb.NewMessage(back); proto.Unmarshal(msg, src) == nil {
		copyAndCheck(t, c, src, false)
	}
	checkWire(t, c, msg)
	// A backend message whose internal values carry the marker, sent over
	// the wire with unknown fields that carry it too.
	src := dynamicpb.NewMessage(back)
	fillBackend(src, pub.ParentFile(), &fuzzBytes{b: msg}, 0)
	b, err := proto.Marshal(src)
	if err != nil {
		t.Fatalf("marshal backend message: %v", err)
	}
	copyAndCheck(t, c, decodeDynamic(t, back, b), true)
	checkWire(t, c, b)
	// Concatenated encodings merge: singular messages merge, scalars and
	// oneof members are replaced, lists and maps grow.
	checkWire(t, c, append(slices.Clip(b), b...))
	if len(msg) > 0 {
		checkWire(t, c, append(slices.Clip(b), msg...))
	}
	return true
}

// checkWire is the differential check of [Copier.ToPublicWire]: wherever
// proto.Unmarshal accepts msg as a backend message, ToPublicWire must accept
// it too and give what ToPublic gives from that message; elsewhere it must
// return an error or a message, never panic.
func checkWire(t *testing.T, c *Copier, msg []byte) {
	t.Helper()
	got := dynamicpb.NewMessage(c.Public())
	wireErr := c.ToPublicWire(got, msg)
	src := dynamicpb.NewMessage(c.Backend())
	if err := proto.Unmarshal(msg, src); err != nil {
		return
	}
	if wireErr != nil {
		t.Fatalf("ToPublicWire(%q) = %v; proto.Unmarshal accepts it", msg, wireErr)
	}
	want := dynamicpb.NewMessage(c.Public())
	c.ToPublic(want, src)
	if !proto.Equal(want, got) {
		t.Fatalf("ToPublicWire(%q) differs from proto.Unmarshal + ToPublic:\nwant %v\ngot  %v", msg, want, got)
	}
}

// TestFuzzCopierInputs runs FuzzCopier's checks on pseudo-random inputs, a
// wider net than its seeds on every go test, and checks that randomSchemas
// makes both schemas that compile and schemas that are refused: a fuzz test
// whose schemas never compile would check nothing.
func TestFuzzCopierInputs(t *testing.T) {
	t.Parallel()
	copier := responseCopier(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1000
	compiled := 0
	for i := range n {
		schema := make([]byte, 1+rng.IntN(64))
		msg := make([]byte, rng.IntN(256))
		for j := range schema {
			schema[j] = byte(rng.Uint32())
		}
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		if fuzzCopy(t, copier, schema, msg) {
			compiled++
		}
		if t.Failed() {
			t.Fatalf("input %d: schema %q, msg %q", i, schema, msg)
		}
	}
	if compiled < n/5 || compiled > n*9/10 {
		t.Errorf("%d of %d random schema pairs compiled; want between a fifth and nine tenths", compiled, n)
	}
	t.Logf("%d of %d random schema pairs compiled", compiled, n)
}

// copyAndCheck copies src to a new public message and checks it. marked says
// whether every internal value of src carries the marker, and no public one.
func copyAndCheck(t *testing.T, c *Copier, src protoreflect.Message, marked bool) {
	t.Helper()
	dst := dynamicpb.NewMessage(c.Public())
	c.ToPublic(dst, src)
	if problems := undeclared(dst); len(problems) > 0 {
		t.Fatalf("public message holds what its schema does not declare:\n%s", strings.Join(problems, "\n"))
	}
	bin, err := proto.Marshal(dst)
	if err != nil {
		t.Fatalf("marshal public message: %v", err)
	}
	// protojson refuses some values (a Timestamp past year 9999); it must
	// not refuse a public message whose backend message it accepts.
	js, err := protojson.Marshal(dst)
	if _, backendErr := protojson.Marshal(src.Interface()); err != nil && backendErr == nil {
		t.Fatalf("marshal public message as JSON: %v", err)
	}
	if marked && (bytes.Contains(bin, []byte(marker)) || bytes.Contains(js, []byte(marker))) {
		t.Fatalf("public message carries the marker:\n%q\n%s", bin, js)
	}
	// Back and forth: the backend message holds only public fields, and
	// copying it again gives the same public message.
	back := dynamicpb.NewMessage(c.Backend())
	c.ToBackend(back, dst)
	walk(back, func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if !publicNames(c.Public().ParentFile(), m.Descriptor())[fd.Name()] {
				t.Errorf("ToBackend set %s, which the public schema does not name", fd.FullName())
			}
			return true
		})
	})
	again := dynamicpb.NewMessage(c.Public())
	c.ToPublic(again, back)
	if !proto.Equal(dst, again) {
		t.Fatalf("ToPublic(ToBackend(p)) != p:\n%v\n%v", dst, again)
	}
}

// publicNames returns the names of the fields of the public message that
// corresponds to backend message md: in the test schemas and in those of
// randomSchemas, the public message of the same name in the public file
// (or in the public file of the test schemas).
func publicNames(pubFile protoreflect.FileDescriptor, md protoreflect.MessageDescriptor) map[protoreflect.Name]bool {
	names := map[protoreflect.Name]bool{}
	if isWellKnown(md.FullName()) {
		for i := range md.Fields().Len() {
			names[md.Fields().Get(i).Name()] = true
		}
		return names
	}
	pub := pubFile.Messages().ByName(md.Name())
	if pub == nil {
		return names
	}
	for i := range pub.Fields().Len() {
		names[pub.Fields().Get(i).Name()] = true
	}
	return names
}

// fuzzBytes hands out fuzz input a byte at a time, then zeros.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzBytes) intn(n int) int { return int(r.next()) % n }

var (
	fuzzScalars = []string{"double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "bytes",
		"uint32", "sfixed32", "sfixed64", "sint32", "sint64"}
	fuzzMapKeys = []string{"string", "int32", "int64", "uint32", "bool", "sint64", "fixed32"}
)

// randomSchemas builds, from r, a backend file fz.back with messages M0..Mn
// and an enum E, and a public file fz.pub derived from it: each field kept,
// dropped, or mutated (kind, cardinality, name, oneof), enum values kept,
// dropped or changed, and sometimes a field the backend lacks.
func randomSchemas(r *fuzzBytes) (backend, public *descriptorpb.FileDescriptorProto) {
	nMessages := 1 + r.intn(3)
	var backValues, pubValues []any
	backValues = append(backValues, "E_ZERO", 0)
	pubValues = append(pubValues, "E_ZERO", 0)
	for n := 1; n <= 6; n++ {
		if r.intn(2) == 0 {
			continue
		}
		name := "E_V" + strconv.Itoa(n)
		backValues = append(backValues, name, n)
		switch r.intn(8) {
		case 0: // dropped
		case 1:
			pubValues = append(pubValues, name, n+10) // renumbered: refused
		default:
			pubValues = append(pubValues, name, n)
		}
	}
	if r.intn(8) == 0 {
		pubValues = append(pubValues, "E_EXTRA", 99) // refused
	}
	backParts := []any{enum("E", backValues...)}
	pubParts := []any{enum("E", pubValues...)}
	for m := range nMessages {
		var backFields, pubFields []any
		nFields := r.intn(7)
		for k := range nFields {
			name := "f" + strconv.Itoa(k)
			typ := randomType(r, nMessages)
			var oneofName string
			switch r.intn(8) {
			case 0, 1, 2, 3:
			case 4:
				if !strings.HasPrefix(typ, "M") {
					typ = "optional " + typ
				}
			case 5:
				typ = "repeated " + typ
			case 6:
				typ = "map<" + fuzzMapKeys[r.intn(len(fuzzMapKeys))] + ", " + typ + ">"
			case 7:
				oneofName = "o"
			}
			backFields = append(backFields, fieldWithOneof(name, int32(k+1), typ, oneofName))
			// Public: other numbers, and a mutation now and then.
			number := int32(nFields - k)
			switch r.intn(10) {
			case 0, 1: // dropped
				continue
			case 2:
				typ = fuzzScalars[r.intn(len(fuzzScalars))] // kind
			case 3:
				if r.intn(2) == 0 && oneofName == "" && !strings.HasPrefix(typ, "repeated ") && !strings.HasPrefix(typ, "map<") {
					typ = "repeated " + strings.TrimPrefix(typ, "optional ") // cardinality
				} else {
					name += "x" // name
				}
			case 4:
				if oneofName != "" {
					oneofName = "p" + strconv.Itoa(r.intn(2)) // other oneofs, or none
				} else if r.intn(2) == 0 && !strings.HasPrefix(typ, "repeated ") && !strings.HasPrefix(typ, "map<") && !strings.HasPrefix(typ, "optional ") {
					oneofName = "o"
				}
			}
			pubFields = append(pubFields, fieldWithOneof(name, number, typ, oneofName))
		}
		if r.intn(10) == 0 {
			pubFields = append(pubFields, field("extra", 100, "string")) // refused
		}
		backParts = append(backParts, message("M"+strconv.Itoa(m), backFields...))
		pubParts = append(pubParts, message("M"+strconv.Itoa(m), pubFields...))
	}
	return file("fz/back.proto", "fz.back", backParts...), file("fz/pub.proto", "fz.pub", pubParts...)
}

func fieldWithOneof(name string, number int32, typ, oneofName string) fieldSpec {
	if oneofName == "" {
		return field(name, number, typ)
	}
	return field(name, number, typ, oneof(oneofName))
}

// randomType is a scalar, the enum E, or a message M0..M(n-1).
func randomType(r *fuzzBytes, nMessages int) string {
	switch i := r.intn(len(fuzzScalars) + 2); {
	case i < len(fuzzScalars):
		return fuzzScalars[i]
	case i == len(fuzzScalars):
		return "E"
	}
	return "M" + strconv.Itoa(r.intn(nMessages))
}

// fillBackend sets fields of m from r. Strings, bytes and string map keys of
// fields the public message of the same name lacks carry the marker, and so
// do unknown fields added to every message; public strings are made of
// digits, so fuzz input cannot spell the marker in them.
func fillBackend(m protoreflect.Message, pubFile protoreflect.FileDescriptor, r *fuzzBytes, depth int) {
	names := publicNames(pubFile, m.Descriptor())
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.intn(3) == 0 {
			continue
		}
		internal := !names[fd.Name()]
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.intn(3) {
				key := randomValue(fd.MapKey(), r, internal).MapKey()
				if fd.MapValue().Message() != nil {
					if depth >= 3 {
						break
					}
					v := mp.NewValue()
					fillBackend(v.Message(), pubFile, r, depth+1)
					mp.Set(key, v)
					continue
				}
				mp.Set(key, randomValue(fd.MapValue(), r, internal))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.intn(3) {
				if fd.Message() != nil {
					if depth >= 3 {
						break
					}
					v := l.NewElement()
					fillBackend(v.Message(), pubFile, r, depth+1)
					l.Append(v)
					continue
				}
				l.Append(randomValue(fd, r, internal))
			}
		case fd.Message() != nil:
			if depth < 3 {
				fillBackend(m.Mutable(fd).Message(), pubFile, r, depth+1)
			}
		default:
			m.Set(fd, randomValue(fd, r, internal))
		}
	}
	var unknown []byte
	unknown = protowire.AppendTag(unknown, 9000+protowire.Number(r.intn(100)), protowire.BytesType)
	unknown = protowire.AppendString(unknown, marker)
	m.SetUnknown(unknown)
}

// randomValue is a value of fd's kind (or, for a map entry's key or value,
// of that kind), from r.
func randomValue(fd protoreflect.FieldDescriptor, r *fuzzBytes, internal bool) protoreflect.Value {
	n := uint64(r.next()) | uint64(r.next())<<8
	if r.intn(4) == 0 {
		n |= uint64(r.next())<<56 | 1<<63
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(n&1 == 1)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(int32(n % 12))) // declared or not
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(n))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(n)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(math.Float32frombits(uint32(n)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(math.Float64frombits(n))
	case protoreflect.StringKind:
		if internal {
			return protoreflect.ValueOfString(marker + strconv.FormatUint(n, 10))
		}
		return protoreflect.ValueOfString(strconv.FormatUint(n, 10))
	case protoreflect.BytesKind:
		if internal {
			return protoreflect.ValueOfBytes([]byte(marker))
		}
		return protoreflect.ValueOfBytes([]byte(strconv.FormatUint(n, 16)))
	}
	panic("randomValue: " + fd.Kind().String())
}
