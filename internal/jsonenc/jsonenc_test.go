package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/internal/jsonenc"
)

// allKinds is a proto3 message with a field of every kind protojson
// writes: scalars, enums, nested and repeated messages, maps of each key
// kind, well-known types, a oneof, an optional field and a custom JSON
// name.
var allKinds = func() protoreflect.MessageDescriptor {
	t := descriptorpb.FieldDescriptorProto_Type_value
	field := func(name string, num int32, typ string, label descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(num), Label: label.Enum(),
			Type: descriptorpb.FieldDescriptorProto_Type(t["TYPE_"+typ]).Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	entry := func(name, keyType, valueType, valueTypeName string) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, keyType, opt, ""), field("value", 2, valueType, opt, valueTypeName)},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
	}
	fields := []*descriptorpb.FieldDescriptorProto{
		field("b", 1, "BOOL", opt, ""), field("s", 2, "STRING", opt, ""), field("i32", 3, "INT32", opt, ""),
		field("si32", 4, "SINT32", opt, ""), field("sf32", 5, "SFIXED32", opt, ""), field("u32", 6, "UINT32", opt, ""),
		field("f32", 7, "FIXED32", opt, ""), field("i64", 8, "INT64", opt, ""), field("si64", 9, "SINT64", opt, ""),
		field("sf64", 10, "SFIXED64", opt, ""), field("u64", 11, "UINT64", opt, ""), field("f64", 12, "FIXED64", opt, ""),
		field("fl", 13, "FLOAT", opt, ""), field("d", 14, "DOUBLE", opt, ""), field("by", 15, "BYTES", opt, ""),
		field("color", 16, "ENUM", opt, ".t.Color"), field("child", 17, "MESSAGE", opt, ".t.All"),
		field("rs", 18, "STRING", rep, ""), field("ri", 19, "INT64", rep, ""), field("rc", 20, "MESSAGE", rep, ".t.All"),
		field("ms", 21, "MESSAGE", rep, ".t.All.MsEntry"), field("mi", 22, "MESSAGE", rep, ".t.All.MiEntry"),
		field("mb", 23, "MESSAGE", rep, ".t.All.MbEntry"), field("mu", 24, "MESSAGE", rep, ".t.All.MuEntry"),
		field("ts", 25, "MESSAGE", opt, ".google.protobuf.Timestamp"), field("du", 26, "MESSAGE", opt, ".google.protobuf.Duration"),
		field("w", 27, "MESSAGE", opt, ".google.protobuf.Int64Value"), field("sw", 28, "MESSAGE", opt, ".google.protobuf.StringValue"),
		field("o_s", 29, "STRING", opt, ""), field("o_m", 30, "MESSAGE", opt, ".t.All"),
		field("opt", 31, "INT32", opt, ""), field("snake_case_name", 32, "STRING", opt, ""),
		field("rf", 33, "FLOAT", rep, ""), field("rcolor", 34, "ENUM", rep, ".t.Color"), field("dw", 35, "MESSAGE", opt, ".google.protobuf.DoubleValue"),
	}
	fields[28].OneofIndex, fields[29].OneofIndex = proto.Int32(0), proto.Int32(0)
	fields[30].OneofIndex, fields[30].Proto3Optional = proto.Int32(1), proto.Bool(true)
	fields[31].JsonName = proto.String("custom-name")
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("t/all.proto"), Package: proto.String("t"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto", "google/protobuf/duration.proto", "google/protobuf/wrappers.proto"},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("COLOR_UNSPECIFIED"), Number: proto.Int32(0)}, {Name: proto.String("COLOR_RED"), Number: proto.Int32(1)},
		}}},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("All"), Field: fields,
			NestedType: []*descriptorpb.DescriptorProto{
				entry("MsEntry", "STRING", "MESSAGE", ".t.All"), entry("MiEntry", "INT32", "STRING", ""),
				entry("MbEntry", "BOOL", "DOUBLE", ""), entry("MuEntry", "UINT64", "ENUM", ".t.Color"),
			},
			OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("choice")}, {Name: proto.String("_opt")}},
		}},
	}
	f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return f.Messages().ByName("All")
}()

// strings holds awkward strings: escapes, controls, non-ASCII, U+FFFD,
// U+2028.
var someStrings = []string{"", "a", `quote " and \ backslash`, "tab\tnl\ncr\r\x00\x1f\x7f", "héllo wörld ✓", "\ufffd", "\u2028\u2029", "<script>&amp;"}

var someFloats = []float64{0, 1, -1, 0.1, 1e-7, 1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 3.4e38, 1e-6, 5e-324}

// fill sets random fields of m from r, nesting at most depth levels.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if r.IntN(3) == 0 || (fd.Message() != nil && !fd.IsMap() && fd.Message().FullName() == "t.All" && depth <= 0) {
			continue
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.IntN(4) {
				k := randomValue(r, fd.MapKey(), m, depth).MapKey()
				if fd.MapValue().Message() != nil {
					if depth <= 0 {
						continue
					}
					v := mp.NewValue()
					fill(r, v.Message(), depth-1)
					mp.Set(k, v)
					continue
				}
				mp.Set(k, randomValue(r, fd.MapValue(), m, depth))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				if fd.Message() != nil {
					v := l.NewElement()
					fill(r, v.Message(), depth-1)
					l.Append(v)
					continue
				}
				l.Append(randomValue(r, fd, m, depth))
			}
		case fd.Message() != nil:
			v := m.NewField(fd)
			fillWellKnown(r, v.Message(), depth-1)
			m.Set(fd, v)
		default:
			m.Set(fd, randomValue(r, fd, m, depth))
		}
	}
}

func fillWellKnown(r *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		secs := []int64{0, 1, -1, 1767225600, -62135596800, 253402300799}[r.IntN(6)]
		m.Set(fds.ByNumber(1), protoreflect.ValueOfInt64(secs))
		m.Set(fds.ByNumber(2), protoreflect.ValueOfInt32([]int32{0, 1, 1000, 1000000, 123456789, 999999999, 120000000}[r.IntN(7)]))
	case "google.protobuf.Duration":
		secs := []int64{0, 1, 90, 315576000000}[r.IntN(4)]
		nanos := []int32{0, 1, 500000000, 999999999, 1000}[r.IntN(5)]
		if r.IntN(2) == 0 {
			secs, nanos = -secs, -nanos
		}
		m.Set(fds.ByNumber(1), protoreflect.ValueOfInt64(secs))
		m.Set(fds.ByNumber(2), protoreflect.ValueOfInt32(nanos))
	default:
		fill(r, m, depth)
	}
}

func randomValue(r *rand.Rand, fd protoreflect.FieldDescriptor, _ protoreflect.Message, _ int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(someStrings[r.IntN(len(someStrings))])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, -1, math.MaxInt32, math.MinInt32, r.Int32()}[r.IntN(6)])
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, math.MaxUint32, r.Uint32()}[r.IntN(4)])
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, r.Int64()}[r.IntN(6)])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, math.MaxUint64, r.Uint64()}[r.IntN(4)])
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(someFloats[r.IntN(len(someFloats))]))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(someFloats[r.IntN(len(someFloats))])
	case protoreflect.BytesKind:
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(r.IntN(3))) // 2 is not a named value
	}
	panic("no random value for " + fd.Kind().String())
}

// protojsonCompact is protojson's encoding without its random spaces.
func protojsonCompact(t testing.TB, m proto.Message) []byte {
	t.Helper()
	raw, err := protojson.Marshal(m)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("compact: %v", err)
	}
	return buf.Bytes()
}

func check(t testing.TB, m proto.Message) {
	t.Helper()
	got, err := jsonenc.AppendMessage(nil, m)
	if err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	if want := protojsonCompact(t, m); !bytes.Equal(got, want) {
		t.Fatalf("AppendMessage wrote\n%s\nprotojson writes\n%s", got, want)
	}
}

func TestAppendMessage(t *testing.T) {
	t.Parallel()
	ts := timestamppb.New(time.Date(2026, time.October, 2, 9, 37, 0, 120000000, time.UTC))
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"empty", &storefrontv1.GetDashboardResponse{}},
		{"dashboard", &storefrontv1.GetDashboardResponse{
			Profile:         &storefrontv1.Profile{DisplayName: "Alice \"A\" Martin", Email: "alice@example.com", Locale: "fr-FR"},
			Loyalty:         &storefrontv1.Loyalty{Points: 12340, Tier: storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD},
			RecentOrders:    []*storefrontv1.Order{{OrderId: "o-1", CreateTime: ts, Total: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 1234}, Lines: []*storefrontv1.OrderLine{{ProductName: "Tea\ttowels ✓", Quantity: 2}}}},
			MissingSections: []storefrontv1.Section{storefrontv1.Section_SECTION_ORDERS, storefrontv1.Section(99)},
		}},
		{"timestamp", ts},
		{"timestamp whole seconds", timestamppb.New(time.Unix(0, 0))},
		{"timestamp micros", timestamppb.New(time.Unix(1, 1000))},
		{"duration", durationpb.New(-1500 * time.Millisecond)},
		{"duration nanos", durationpb.New(time.Nanosecond)},
		{"wrapper zero", wrapperspb.Int64(0)},
		{"wrapper string", wrapperspb.String("x\ny")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.msg)
		})
	}
}

func TestAppendMessageAllKinds(t *testing.T) {
	t.Parallel()
	for seed := range uint64(2000) {
		m := dynamicpb.NewMessage(allKinds)
		fill(rand.New(rand.NewPCG(seed, 7)), m, 2)
		check(t, m)
	}
}

func FuzzAppendMessage(f *testing.F) {
	for _, seed := range []uint64{0, 1, 2, 42, 1 << 40} {
		f.Add(seed, uint8(2))
	}
	f.Fuzz(func(t *testing.T, seed uint64, depth uint8) {
		m := dynamicpb.NewMessage(allKinds)
		fill(rand.New(rand.NewPCG(seed, uint64(depth))), m, int(depth%4))
		check(t, m)
	})
}

// TestUnsupported checks that what protojson writes differently, or
// refuses, is left to it.
func TestUnsupported(t *testing.T) {
	t.Parallel()
	st, _ := structpb.NewStruct(map[string]any{"a": 1})
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"struct", st},
		{"invalid UTF-8", &storefrontv1.Profile{DisplayName: "a\xffb"}},
		{"nested invalid UTF-8", &storefrontv1.GetDashboardResponse{Profile: &storefrontv1.Profile{Email: "\xc3"}}},
		{"timestamp out of range", &timestamppb.Timestamp{Seconds: 253402300800}},
		{"duration signs differ", &durationpb.Duration{Seconds: 1, Nanos: -1}},
		{"proto2 with extensions", &descriptorpb.FieldOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := jsonenc.AppendMessage(nil, tt.msg); !errors.Is(err, jsonenc.ErrUnsupported) {
				t.Errorf("AppendMessage: %v, want ErrUnsupported", err)
			}
		})
	}
}

func TestAppendMessageAllocations(t *testing.T) {
	m := &storefrontv1.GetDashboardResponse{
		Profile:      &storefrontv1.Profile{DisplayName: "Alice", Email: "alice@example.com"},
		RecentOrders: []*storefrontv1.Order{{OrderId: "o-1", CreateTime: timestamppb.Now(), Total: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 1234}}},
	}
	buf := make([]byte, 0, 4096)
	if _, err := jsonenc.AppendMessage(buf, m); err != nil {
		t.Fatal(err)
	}
	// protoreflect's view of a repeated field is the only allocation.
	if n := testing.AllocsPerRun(100, func() { _, _ = jsonenc.AppendMessage(buf[:0], m) }); n > 1 {
		t.Errorf("AppendMessage allocates %v times for a dashboard with one repeated field, want at most 1", n)
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	m := &storefrontv1.GetDashboardResponse{
		Profile:      &storefrontv1.Profile{DisplayName: "Alice Martin", Email: "alice@example.com", Locale: "fr-FR"},
		Loyalty:      &storefrontv1.Loyalty{Points: 12340, Tier: storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD},
		RecentOrders: []*storefrontv1.Order{{OrderId: "o-1001", CreateTime: timestamppb.Now(), Total: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 1234}, Lines: []*storefrontv1.OrderLine{{ProductName: "Linen Tea Towels", Quantity: 2, UnitPrice: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 18}}, {ProductName: "Wooden Chess Set", Quantity: 1, UnitPrice: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 59}}}}},
	}
	b.Run("jsonenc", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = jsonenc.AppendMessage(buf[:0], m)
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = protojson.MarshalOptions{}.MarshalAppend(buf[:0], m)
		}
	})
}
