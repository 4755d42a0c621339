package server

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// nestedGroups returns n unknown groups (field 99), each inside the last.
func nestedGroups(n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, 99, protowire.StartGroupType)
	}
	for range n {
		b = protowire.AppendTag(b, 99, protowire.EndGroupType)
	}
	return b
}

func TestProtoCodecNestingCountsUnknownGroups(t *testing.T) {
	t.Parallel()
	// A profile (field 1 of GetDashboardResponse) holding groups: one
	// level of message nesting more.
	inProfile := func(n int) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), nestedGroups(n))
	}
	lengthDelimited := func(n int) []byte {
		var b []byte
		for range n {
			b = protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), b)
		}
		return b
	}
	cases := []struct {
		name    string
		data    []byte
		refused bool
	}{
		{"groups at the limit", nestedGroups(maxNesting), false},
		{"groups one over the limit", nestedGroups(maxNesting + 1), true},
		{"100 groups", nestedGroups(100), true},
		{"9999 groups", nestedGroups(9999), true},
		{"groups at the limit in a field", inProfile(maxNesting - 1), false},
		{"groups over the limit in a field", inProfile(maxNesting), true},
		// Unknown length-delimited fields are opaque bytes: never parsed,
		// they cost no recursion and are kept as they are.
		{"100 nested unknown bytes fields", lengthDelimited(100), false},
	}
	for _, c := range cases {
		err := protoCodec{}.Unmarshal(c.data, &storefrontv1.GetDashboardResponse{})
		if c.refused != (err != nil) {
			t.Errorf("%s: Unmarshal: %v, want refused %v", c.name, err, c.refused)
		}
		if c.refused && !errors.Is(err, errTooDeep) {
			t.Errorf("%s: Unmarshal: %v, want %v", c.name, err, errTooDeep)
		}
	}
}
