package routes_test

// The canary backend of the end-to-end tests (e2e_test.go): an in-process
// backend that serves routese2e.backend.v1.TicketService from its
// descriptors alone (dynamicpb, no generated code) and answers with
// messages in which every field that routese2e.web.v1 does not name, at
// every depth, carries a canary; every message also carries unknown fields
// with canaries, some at the numbers of public fields, and public enum
// fields carry numbers the public enums do not declare. Its errors,
// headers and trailers carry canaries too. The filler that builds its
// answers also builds, alongside, the public answer a route must make of
// them, so the tests compare what browsers get with it exactly.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// Names in testdata/e2e.
const (
	e2eModule      = "testdata/e2e"
	webService     = "routese2e.web.v1.TicketService"
	backendService = "routese2e.backend.v1.TicketService"
	backendPackage = "routese2e.backend"
)

// e2eSet is the descriptor set of testdata/e2e, built once per test
// process: `go tool buf build` takes about a second.
var e2eSet struct {
	once  sync.Once
	raw   []byte
	files *protoregistry.Files
	err   error
}

// e2eSchemas builds testdata/e2e into a descriptor set (imports included)
// with `go tool buf build`, once per process, and writes it to a file of
// the test's own; it returns the file's path and the set's files.
func e2eSchemas(t testing.TB) (string, *protoregistry.Files) {
	t.Helper()
	e2eSet.once.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.Command("go", "tool", "buf", "build", e2eModule, "-o", "-")
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		if err != nil {
			e2eSet.err = fmt.Errorf("go tool buf build %s: %v\n%s", e2eModule, err, stderr.Bytes())
			return
		}
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(raw, &set); err != nil {
			e2eSet.err = fmt.Errorf("buf build output: %v", err)
			return
		}
		e2eSet.raw = raw
		e2eSet.files, e2eSet.err = protodesc.NewFiles(&set)
	})
	if e2eSet.err != nil {
		t.Fatal(e2eSet.err)
	}
	path := filepath.Join(t.TempDir(), "routese2e.binpb")
	if err := os.WriteFile(path, e2eSet.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, e2eSet.files
}

// method returns the method "package.Service/Method" of files.
func method(t testing.TB, files *protoregistry.Files, name string) protoreflect.MethodDescriptor {
	t.Helper()
	service, m, _ := strings.Cut(name, "/")
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatalf("service %s: %v", service, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(m))
	if md == nil {
		t.Fatalf("no method %s", name)
	}
	return md
}

// specOf describes md for a client or a server, as a route does.
func specOf(md protoreflect.MethodDescriptor) connect.Spec {
	s := connect.Spec{
		Procedure:  "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		Schema:     md,
		StreamType: connect.StreamTypeUnary,
	}
	if md.IsStreamingServer() {
		s.StreamType = connect.StreamTypeServer
	}
	if md.Options().(*descriptorpb.MethodOptions).GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
		s.IdempotencyLevel = connect.IdempotencyNoSideEffects
	}
	return s
}

// Canaries: what the canary backend puts in every internal field.
const (
	marker       = "CANARY-INTERNAL"
	canaryInt32  = int32(987654321)
	canaryInt64  = int64(987654321987)
	canaryDouble = 0.987654321
	canaryFloat  = float32(0.987654321)
)

// canaryKeys32 and canaryKeys64 are the integer keys of internal maps:
// distinct, and each shows canaryDigits in decimal.
var (
	canaryKeys32 = []int32{987654321, 1987654321}
	canaryKeys64 = []int64{987654321987, 1987654321987}
)

// enumTurns are the numbers public enum fields get in turn: declared by the
// public enum (1, 2), by the backend's only (3, 9), or by neither (77).
var enumTurns = []protoreflect.EnumNumber{1, 9, 2, 77, 3}

// filler fills a backend message and, when there is one, the public message
// a route must build from it.
type filler struct {
	seed     string
	seq      int // numbers every value, so that values differ
	turn     int // rotates oneof members
	lists    int // elements per repeated field and entries per map
	maxDepth int // message fields below this depth are left empty
	unknown  bool
}

// newFiller returns a filler whose values and oneof choices depend on seed.
func newFiller(seed string) *filler {
	h := fnv.New32a()
	h.Write([]byte(seed))
	return &filler{seed: seed, turn: int(h.Sum32() % 1024), lists: 2, maxDepth: 4}
}

// fillAnswer returns a backend message of backend filled with canaries and
// public values derived from seed, and the public message of public that a
// route must make of it.
func fillAnswer(backend, public protoreflect.MessageDescriptor, seed string) (b, p *dynamicpb.Message) {
	b, p = dynamicpb.NewMessage(backend), dynamicpb.NewMessage(public)
	f := newFiller(seed)
	f.unknown = true
	f.message(b, p, 0)
	return b, p
}

// message fills b, a backend message; p is its public counterpart, nil when
// b is internal as a whole.
func (f *filler) message(b, p protoreflect.Message, depth int) {
	bd := b.Descriptor()
	chosen := map[protoreflect.OneofDescriptor]protoreflect.FieldDescriptor{}
	oneofs := bd.Oneofs()
	for i := range oneofs.Len() {
		if od := oneofs.Get(i); !od.IsSynthetic() {
			chosen[od] = od.Fields().Get(f.turn % od.Fields().Len())
			f.turn++
		}
	}
	fields := bd.Fields()
	for i := range fields.Len() {
		bfd := fields.Get(i)
		if od := bfd.ContainingOneof(); od != nil && !od.IsSynthetic() && chosen[od] != bfd {
			continue
		}
		var pfd protoreflect.FieldDescriptor
		if p != nil {
			pfd = p.Descriptor().Fields().ByName(bfd.Name())
		}
		holdsMessage := bfd.Message() != nil
		if bfd.IsMap() {
			holdsMessage = bfd.MapValue().Message() != nil
		}
		if holdsMessage && depth >= f.maxDepth {
			continue
		}
		switch {
		case bfd.IsMap():
			f.fillMap(b, p, bfd, pfd, depth)
		case bfd.IsList():
			bl := b.Mutable(bfd).List()
			var pl protoreflect.List
			if pfd != nil {
				pl = p.Mutable(pfd).List()
			}
			for range f.lists {
				if bfd.Message() != nil {
					be := bl.NewElement()
					var pm protoreflect.Message
					if pl != nil {
						pe := pl.NewElement()
						pm = pe.Message()
						pl.Append(pe)
					}
					f.message(be.Message(), pm, depth+1)
					bl.Append(be)
					continue
				}
				bv, pv := f.scalar(bfd, pfd)
				bl.Append(bv)
				if pl != nil {
					pl.Append(pv)
				}
			}
		case bfd.Message() != nil:
			var pm protoreflect.Message
			if pfd != nil {
				pm = p.Mutable(pfd).Message()
			}
			f.message(b.Mutable(bfd).Message(), pm, depth+1)
		default:
			bv, pv := f.scalar(bfd, pfd)
			b.Set(bfd, bv)
			if pfd != nil {
				p.Set(pfd, pv)
			}
		}
	}
	if f.unknown {
		b.SetUnknown(f.unknownFields(bd, p))
	}
}

func (f *filler) fillMap(b, p protoreflect.Message, bfd, pfd protoreflect.FieldDescriptor, depth int) {
	bm := b.Mutable(bfd).Map()
	var pm protoreflect.Map
	if pfd != nil {
		pm = p.Mutable(pfd).Map()
	}
	for i := range f.lists {
		f.seq++
		key := f.mapKey(bfd.MapKey(), pfd == nil, i)
		if bfd.MapValue().Message() != nil {
			bv := bm.NewValue()
			var pmsg protoreflect.Message
			if pm != nil {
				pv := pm.NewValue()
				pmsg = pv.Message()
				pm.Set(key, pv)
			}
			f.message(bv.Message(), pmsg, depth+1)
			bm.Set(key, bv)
			continue
		}
		var pvd protoreflect.FieldDescriptor
		if pfd != nil {
			pvd = pfd.MapValue()
		}
		bv, pv := f.scalar(bfd.MapValue(), pvd)
		bm.Set(key, bv)
		if pm != nil {
			pm.Set(key, pv)
		}
	}
}

// mapKey returns the i-th key of a map whose keys are of fd's kind.
func (f *filler) mapKey(fd protoreflect.FieldDescriptor, internal bool, i int) protoreflect.MapKey {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if internal {
			return protoreflect.ValueOfString(fmt.Sprintf("%s-key-%d", marker, f.seq)).MapKey()
		}
		return protoreflect.ValueOfString(fmt.Sprintf("key-%s-%d", f.seed, f.seq)).MapKey()
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(i == 0).MapKey()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if internal {
			return protoreflect.ValueOfInt32(canaryKeys32[i%2]).MapKey()
		}
		return protoreflect.ValueOfInt32(int32(f.seq)).MapKey()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if internal {
			return protoreflect.ValueOfUint32(uint32(canaryKeys32[i%2])).MapKey()
		}
		return protoreflect.ValueOfUint32(uint32(f.seq)).MapKey()
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if internal {
			return protoreflect.ValueOfInt64(canaryKeys64[i%2]).MapKey()
		}
		return protoreflect.ValueOfInt64(int64(f.seq)).MapKey()
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if internal {
			return protoreflect.ValueOfUint64(uint64(canaryKeys64[i%2])).MapKey()
		}
		return protoreflect.ValueOfUint64(uint64(f.seq)).MapKey()
	}
	panic(fmt.Sprintf("filler: map key kind %v", fd.Kind()))
}

// scalar returns a value of bfd's kind (a field, list element or map
// value) and, when pfd is not nil, the value a public answer must have.
// Internal values are canaries; public ones derive from the seed. Public
// enums get numbers in turn from enumTurns and must become the public
// enum's zero value when it does not declare them; proto3 optional public
// fields are set to their zero value half the time, which is presence the
// answer must keep.
func (f *filler) scalar(bfd, pfd protoreflect.FieldDescriptor) (bv, pv protoreflect.Value) {
	f.seq++
	if pfd == nil {
		return canaryValue(bfd, f.seq), protoreflect.Value{}
	}
	if bfd.HasOptionalKeyword() && f.seq%2 == 0 {
		return bfd.Default(), pfd.Default()
	}
	switch bfd.Kind() {
	case protoreflect.StringKind:
		v := protoreflect.ValueOfString(fmt.Sprintf("pub-%s-%s-%d", f.seed, bfd.Name(), f.seq))
		if bfd.ContainingMessage().FullName() == "google.protobuf.FieldMask" {
			v = protoreflect.ValueOfString("field_" + string(rune('a'+f.seq%26))) // JSON wants a snake_case path
		}
		return v, v
	case protoreflect.BytesKind:
		s := fmt.Sprintf("pub-%s-%d", f.seed, f.seq)
		return protoreflect.ValueOfBytes([]byte(s)), protoreflect.ValueOfBytes([]byte(s))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true), protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		n := enumTurns[f.seq%len(enumTurns)]
		pn := pfd.Enum().Values().Get(0).Number()
		if pfd.Enum().Values().ByNumber(n) != nil {
			pn = n
		}
		return protoreflect.ValueOfEnum(n), protoreflect.ValueOfEnum(pn)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		v := protoreflect.ValueOfInt32(int32(f.seq))
		return v, v
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		v := protoreflect.ValueOfUint32(uint32(f.seq))
		return v, v
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		v := protoreflect.ValueOfInt64(int64(1000 + f.seq))
		return v, v
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		v := protoreflect.ValueOfUint64(uint64(1000 + f.seq))
		return v, v
	case protoreflect.FloatKind:
		v := protoreflect.ValueOfFloat32(float32(f.seq) + 0.5)
		return v, v
	case protoreflect.DoubleKind:
		v := protoreflect.ValueOfFloat64(float64(f.seq) + 0.25)
		return v, v
	}
	panic(fmt.Sprintf("filler: kind %v of %s", bfd.Kind(), bfd.FullName()))
}

// canaryValue returns the canary of fd's kind.
func canaryValue(fd protoreflect.FieldDescriptor, seq int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%s-%d", marker, fd.Name(), seq))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(fmt.Appendf(nil, "%s-%s-%d", marker, fd.Name(), seq))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		return protoreflect.ValueOfEnum(values.Get(values.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(canaryInt32)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(canaryInt32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(canaryInt64)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(canaryInt64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(canaryFloat)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(canaryDouble)
	}
	panic(fmt.Sprintf("canaryValue: kind %v of %s", fd.Kind(), fd.FullName()))
}

// unknownFields returns the unknown fields a backend message of bd gets:
// canaries of every wire type (a group included) at numbers no schema
// uses, and, for each field of the public counterpart p whose number the
// backend type leaves free, a canary of that field's wire type at that
// number, which decoding the backend's bytes as a public message would
// turn into a public field.
func (f *filler) unknownFields(bd protoreflect.MessageDescriptor, p protoreflect.Message) []byte {
	f.seq++
	var raw []byte
	raw = protowire.AppendTag(raw, 4242, protowire.BytesType)
	raw = protowire.AppendString(raw, fmt.Sprintf("%s-unknown-%d", marker, f.seq))
	raw = protowire.AppendTag(raw, 4243, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(canaryInt64))
	raw = protowire.AppendTag(raw, 4244, protowire.Fixed64Type)
	raw = protowire.AppendFixed64(raw, math.Float64bits(canaryDouble))
	raw = protowire.AppendTag(raw, 4245, protowire.Fixed32Type)
	raw = protowire.AppendFixed32(raw, math.Float32bits(canaryFloat))
	raw = protowire.AppendTag(raw, 4246, protowire.StartGroupType)
	raw = protowire.AppendTag(raw, 1, protowire.BytesType)
	raw = protowire.AppendString(raw, marker+"-group")
	raw = protowire.AppendTag(raw, 4246, protowire.EndGroupType)
	if p == nil {
		return raw
	}
	fields := p.Descriptor().Fields()
	for i := range fields.Len() {
		pf := fields.Get(i)
		if bd.Fields().ByNumber(pf.Number()) != nil {
			continue
		}
		if pf.IsMap() {
			var entry []byte
			entry = appendCanaryWire(entry, 1, pf.MapKey())
			entry = appendCanaryWire(entry, 2, pf.MapValue())
			raw = protowire.AppendTag(raw, pf.Number(), protowire.BytesType)
			raw = protowire.AppendBytes(raw, entry)
			continue
		}
		raw = appendCanaryWire(raw, pf.Number(), pf)
	}
	return raw
}

// appendCanaryWire appends a canary of fd's kind as field num.
func appendCanaryWire(raw []byte, num protowire.Number, fd protoreflect.FieldDescriptor) []byte {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		raw = protowire.AppendTag(raw, num, protowire.BytesType)
		return protowire.AppendString(raw, marker+"-at-public-number-"+strconv.Itoa(int(num)))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		// A message whose field 1 is a string canary.
		var inner []byte
		inner = protowire.AppendTag(inner, 1, protowire.BytesType)
		inner = protowire.AppendString(inner, marker+"-nested-at-public-number-"+strconv.Itoa(int(num)))
		raw = protowire.AppendTag(raw, num, protowire.BytesType)
		return protowire.AppendBytes(raw, inner)
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		raw = protowire.AppendTag(raw, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(raw, math.Float64bits(canaryDouble))
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		raw = protowire.AppendTag(raw, num, protowire.Fixed32Type)
		return protowire.AppendFixed32(raw, math.Float32bits(canaryFloat))
	}
	raw = protowire.AppendTag(raw, num, protowire.VarintType)
	return protowire.AppendVarint(raw, uint64(canaryInt32))
}

// attackFields returns what a browser appends to a public request of
// public to set the backend request's fields that the public type does not
// name: each at its backend number, a string "victim" or the varint 1.
func attackFields(public, backend protoreflect.MessageDescriptor) []byte {
	var raw []byte
	fields := backend.Fields()
	for i := range fields.Len() {
		bf := fields.Get(i)
		if public.Fields().ByName(bf.Name()) != nil || public.Fields().ByNumber(bf.Number()) != nil {
			continue
		}
		if bf.Kind() == protoreflect.StringKind {
			raw = protowire.AppendTag(raw, bf.Number(), protowire.BytesType)
			raw = protowire.AppendString(raw, "victim")
			continue
		}
		raw = protowire.AppendTag(raw, bf.Number(), protowire.VarintType)
		raw = protowire.AppendVarint(raw, 1)
	}
	return raw
}

// Leak detection.

// needles returns what no browser-visible byte may contain: the string
// canaries' prefix (also that of gatewaytest.CanaryError), the canary
// numbers in decimal and in every binary encoding, the internal package
// and host names, and the JSON names of the backend fields that the public
// schema does not name.
func needles(files *protoregistry.Files) [][]byte {
	n := [][]byte{
		[]byte("CANARY-"),
		[]byte("987654321"),
		[]byte(backendPackage),
		[]byte("db-7"),
		[]byte(strconv.FormatFloat(float64(canaryFloat), 'g', -1, 32)),
		protowire.AppendVarint(nil, uint64(canaryInt32)),
		protowire.AppendVarint(nil, uint64(canaryInt64)),
		protowire.AppendVarint(nil, protowire.EncodeZigZag(int64(canaryInt32))),
		protowire.AppendVarint(nil, protowire.EncodeZigZag(canaryInt64)),
		binary.LittleEndian.AppendUint32(nil, uint32(canaryInt32)),
		binary.LittleEndian.AppendUint64(nil, uint64(canaryInt64)),
		binary.LittleEndian.AppendUint32(nil, math.Float32bits(canaryFloat)),
		binary.LittleEndian.AppendUint64(nil, math.Float64bits(canaryDouble)),
	}
	public := map[string]bool{}
	internal := map[string]bool{}
	files.RangeFilesByPackage("routese2e.web.v1", func(fd protoreflect.FileDescriptor) bool {
		rangeMessages(fd.Messages(), func(md protoreflect.MessageDescriptor) {
			for i := range md.Fields().Len() {
				public[md.Fields().Get(i).JSONName()] = true
			}
		})
		return true
	})
	files.RangeFilesByPackage("routese2e.backend.v1", func(fd protoreflect.FileDescriptor) bool {
		rangeMessages(fd.Messages(), func(md protoreflect.MessageDescriptor) {
			for i := range md.Fields().Len() {
				internal[md.Fields().Get(i).JSONName()] = true
			}
		})
		return true
	})
	for _, name := range slices.Sorted(maps.Keys(internal)) {
		if !public[name] {
			n = append(n, []byte(strconv.Quote(name)))
		}
	}
	return n
}

func rangeMessages(ms protoreflect.MessageDescriptors, f func(protoreflect.MessageDescriptor)) {
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		f(m)
		rangeMessages(m.Messages(), f)
	}
}

// findLeak returns the first needle in text, with its surroundings, ""
// without one.
func findLeak(needles [][]byte, text string) string {
	for _, n := range needles {
		if i := strings.Index(text, string(n)); i >= 0 {
			return fmt.Sprintf("%q at %d (…%q…)", n, i, text[max(0, i-60):min(len(text), i+60)])
		}
	}
	return ""
}

// publicProblems lists what a public answer must not hold: unknown fields
// and enum numbers its enums do not declare, at any depth.
func publicProblems(m protoreflect.Message, path string) []string {
	var out []string
	if u := m.GetUnknown(); len(u) > 0 {
		out = append(out, fmt.Sprintf("%s: %d bytes of unknown fields", path, len(u)))
	}
	enumOK := func(fd protoreflect.FieldDescriptor, v protoreflect.Value, at string) {
		if fd.Kind() == protoreflect.EnumKind && fd.Enum().Values().ByNumber(v.Enum()) == nil {
			out = append(out, fmt.Sprintf("%s: enum number %d that %s does not declare", at, v.Enum(), fd.Enum().FullName()))
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		at := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				kat := fmt.Sprintf("%s[%v]", at, k)
				if fd.MapValue().Message() != nil {
					out = append(out, publicProblems(mv.Message(), kat)...)
				} else {
					enumOK(fd.MapValue(), mv, kat)
				}
				return true
			})
		case fd.IsList():
			for i := range v.List().Len() {
				eat := fmt.Sprintf("%s[%d]", at, i)
				if fd.Message() != nil {
					out = append(out, publicProblems(v.List().Get(i).Message(), eat)...)
				} else {
					enumOK(fd, v.List().Get(i), eat)
				}
			}
		case fd.Message() != nil:
			out = append(out, publicProblems(v.Message(), at)...)
		default:
			enumOK(fd, v, at)
		}
		return true
	})
	return out
}

// text formats m for a failure message.
func text(m proto.Message) string {
	return prototext.MarshalOptions{Multiline: true, EmitUnknown: true}.Format(m)
}

// The canary backend.

// canaryCall is one request the canary backend received.
type canaryCall struct {
	Procedure string
	Key       string // the request's filter or ticket_id
	Header    http.Header
	Token     string // the bearer token, "" without one
	Request   *dynamicpb.Message
}

// canaryBackend serves routese2e.backend.v1.TicketService on 127.0.0.1
// over HTTP/1.1 and h2c (Connect, gRPC and gRPC-Web). What it answers
// depends on the request's key (its filter or ticket_id):
//
//   - "fail:CODE:ID" fails with code CODE and canaries in its message,
//     details, headers and trailers;
//   - "midstream:CODE:ID" (streams) sends one answer, then fails so;
//   - "refuse-once:ID" answers unauthenticated to the first call;
//   - anything else answers fillAnswer's message for the key (streams:
//     three, for KEY#0, KEY#1 and KEY#2).
type canaryBackend struct {
	URL string

	mu      sync.Mutex
	calls   []canaryCall
	refused map[string]bool
}

// startCanary starts the canary backend; it stops when the test ends.
func startCanary(t testing.TB, files *protoregistry.Files) *canaryBackend {
	t.Helper()
	c := &canaryBackend{refused: map[string]bool{}}
	srv := connect.NewServer()
	backendMethods := findService(t, files, backendService).Methods()
	public := findService(t, files, webService).Methods()
	for i := range backendMethods.Len() {
		m := backendMethods.Get(i)
		if m.IsStreamingClient() {
			continue
		}
		srv.Register(connect.Method{Spec: specOf(m), Handler: c.handler(m, public.ByName(m.Name()))})
	}
	c.URL = serveH2C(t, srv)
	return c
}

// serveH2C serves srv on a loopback port, over HTTP/1.1 and h2c, until the
// test ends, and returns its URL.
func serveH2C(t testing.TB, srv *connect.Server) string {
	t.Helper()
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ln, _ := gt.ListenLoopback(t)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: mux, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func findService(t testing.TB, files *protoregistry.Files, name protoreflect.FullName) protoreflect.ServiceDescriptor {
	t.Helper()
	d, err := files.FindDescriptorByName(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return d.(protoreflect.ServiceDescriptor)
}

// Calls returns the requests received with key.
func (c *canaryBackend) Calls(key string) []canaryCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []canaryCall
	for _, call := range c.calls {
		if call.Key == key {
			out = append(out, call)
		}
	}
	return out
}

// requestKey returns the filter or ticket_id of a request.
func requestKey(m protoreflect.Message) string {
	for _, name := range []protoreflect.Name{"filter", "ticket_id"} {
		if fd := m.Descriptor().Fields().ByName(name); fd != nil {
			return m.Get(fd).String()
		}
	}
	return ""
}

func (c *canaryBackend) handler(m, public protoreflect.MethodDescriptor) connect.ServerFunc {
	return func(ctx context.Context, _ connect.Spec, stream connect.ServerStream) error {
		info, _ := connect.CallInfoForServerContext(ctx)
		info.ResponseHeader().Set("X-Backend-Host", marker+"-header.db-7.acme.internal")
		info.ResponseTrailer().Set("X-Backend-Trailer", marker+"-trailer")
		req := dynamicpb.NewMessage(m.Input())
		if err := stream.Receive(req); err != nil {
			return err
		}
		call := canaryCall{Procedure: specOf(m).Procedure, Key: requestKey(req), Header: http.Header{}, Request: req}
		for k, v := range info.RequestHeader().All() {
			call.Header[http.CanonicalHeaderKey(k)] = slices.Clone(v)
		}
		call.Token, _ = strings.CutPrefix(call.Header.Get("Authorization"), "Bearer ")
		c.mu.Lock()
		c.calls = append(c.calls, call)
		refuse := strings.HasPrefix(call.Key, "refuse-once:") && !c.refused[call.Key]
		if refuse {
			c.refused[call.Key] = true
		}
		c.mu.Unlock()

		cmd, rest, _ := strings.Cut(call.Key, ":")
		codeName, _, _ := strings.Cut(rest, ":")
		var code connect.Code
		switch {
		case refuse:
			return canaryError(info, connect.CodeUnauthenticated, call.Key)
		case cmd == "fail" || cmd == "midstream":
			if err := code.UnmarshalText([]byte(codeName)); err != nil {
				return connect.NewError(connect.CodeInvalidArgument, "bad test key "+call.Key)
			}
			if cmd == "fail" {
				return canaryError(info, code, call.Key)
			}
		}
		if !m.IsStreamingServer() {
			answer, _ := fillAnswer(m.Output(), public.Output(), call.Key)
			return stream.Send(answer)
		}
		for i := range 3 {
			answer, _ := fillAnswer(m.Output(), public.Output(), fmt.Sprintf("%s#%d", call.Key, i))
			if err := stream.Send(answer); err != nil {
				return err
			}
			if cmd == "midstream" {
				return canaryError(info, code, call.Key)
			}
		}
		return nil
	}
}

// canaryError is a backend failure whose message, details, headers and
// trailers carry canaries: gatewaytest.CanaryError's details (a BadRequest
// and a SessionError that only the gateway may issue) and a backend Ticket
// full of canaries, with a debug form. Its message names key, so that a
// test can find its log line.
func canaryError(info *connect.CallInfo, code connect.Code, key string) error {
	info.ResponseHeader().Set("X-Backend-Error", marker+"-error-header")
	info.ResponseTrailer().Set("X-Backend-Error-Trailer", marker+"-error-trailer")
	err := connect.NewError(code, fmt.Sprintf("%s-error %s at db-7.acme.internal", marker, key))
	for _, d := range gt.CanaryError(code).Details() {
		err = err.WithDetail(d)
	}
	// A backend Ticket whose internal_notes (2) is a canary.
	value := protowire.AppendTag(nil, 2, protowire.BytesType)
	value = protowire.AppendString(value, marker+"-detail")
	return err.WithDetail(&connect.ErrorDetail{
		Type:  backendPackage + ".v1.Ticket",
		Value: value,
		Debug: fmt.Appendf(nil, `{"internalNotes":"%s-debug"}`, marker),
	})
}
