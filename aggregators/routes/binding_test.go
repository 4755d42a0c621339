package routes

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func bindingSchemas(t *testing.T) (public, backend protoreflect.MessageDescriptor) {
	t.Helper()
	files := buildFiles(t,
		file("web.proto", "web.v1", message("Req", field("ticket_id", 1, "string"), field("owner", 2, "string"))),
		file("internal.proto", "internal.v1", message("Req",
			field("ticket_id", 1, "string"),
			field("owner", 2, "string"),
			field("account_id", 3, "string"),
			field("i32", 4, "int32"), field("s32", 5, "sint32"), field("sf32", 6, "sfixed32"),
			field("i64", 7, "int64"), field("s64", 8, "sint64"), field("sf64", 9, "sfixed64"),
			field("u32", 10, "uint32"), field("f32", 11, "fixed32"),
			field("u64", 12, "uint64"), field("f64", 13, "fixed64"),
			field("accounts", 14, "repeated string"),
			field("scopes", 15, "map<string, string>"),
			field("admin", 16, "bool"),
			field("raw", 17, "bytes"),
			field("who", 18, "Req"),
			field("opt", 19, "optional string"),
		)),
	)
	return findMessage(t, files, "web.v1.Req"), findMessage(t, files, "internal.v1.Req")
}

func TestCheckBinding(t *testing.T) {
	t.Parallel()
	public, backend := bindingSchemas(t)
	tests := []struct {
		field string
		want  string // "" if accepted
	}{
		{field: "account_id"},
		{field: "i64"},
		{field: "f32"},
		{field: "opt"},
		{field: "tenant", want: "cannot bind internal.v1.Req.tenant: backend request has no such field"},
		{field: "accounts", want: "cannot bind internal.v1.Req.accounts: is repeated; a bound field must be a singular string or integer"},
		{field: "scopes", want: "cannot bind internal.v1.Req.scopes: is a map; a bound field must be a singular string or integer"},
		{field: "admin", want: "cannot bind internal.v1.Req.admin: is bool; a bound field must be a singular string or integer"},
		{field: "raw", want: "cannot bind internal.v1.Req.raw: is bytes; a bound field must be a singular string or integer"},
		{field: "who", want: "cannot bind internal.v1.Req.who: is message internal.v1.Req; a bound field must be a singular string or integer"},
		{field: "owner", want: "cannot bind internal.v1.Req.owner: public request web.v1.Req has a field of that name, so a browser could set it"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			fd, err := CheckBinding(backend, public, tt.field)
			if tt.want == "" {
				if err != nil || fd == nil || string(fd.Name()) != tt.field || fd.ContainingMessage() != backend {
					t.Fatalf("CheckBinding = %v, %v", fd, err)
				}
				return
			}
			be, ok := errors.AsType[*BindingError](err)
			if !ok || err.Error() != tt.want {
				t.Fatalf("CheckBinding error:\n got %v\nwant %s", err, tt.want)
			}
			if be.Field != tt.field || be.Message != "internal.v1.Req" {
				t.Errorf("BindingError = %+v", be)
			}
		})
	}
}

func TestSetBinding(t *testing.T) {
	t.Parallel()
	public, backend := bindingSchemas(t)
	tests := []struct {
		field, claim string
		want         any   // the field's value, if set
		err          error // wrapped by the error, if any
	}{
		{field: "account_id", claim: "user-123", want: "user-123"},
		{field: "account_id", claim: "", err: ErrEmptyClaim},
		{field: "account_id", claim: "\xff", err: nil},
		{field: "opt", claim: "x", want: "x"},
		{field: "i32", claim: "-2147483648", want: int32(-2147483648)},
		{field: "i32", claim: "2147483648", err: strconv.ErrRange},
		{field: "s32", claim: "42", want: int32(42)},
		{field: "sf32", claim: "-7", want: int32(-7)},
		{field: "i64", claim: "9223372036854775807", want: int64(9223372036854775807)},
		{field: "i64", claim: "12abc", err: strconv.ErrSyntax},
		{field: "i64", claim: "", err: ErrEmptyClaim},
		{field: "s64", claim: "-1", want: int64(-1)},
		{field: "sf64", claim: "1", want: int64(1)},
		{field: "u32", claim: "4294967295", want: uint32(4294967295)},
		{field: "u32", claim: "-1", err: strconv.ErrSyntax},
		{field: "f32", claim: "4294967296", err: strconv.ErrRange},
		{field: "u64", claim: "18446744073709551615", want: uint64(18446744073709551615)},
		{field: "f64", claim: "0x10", err: strconv.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.claim, func(t *testing.T) {
			t.Parallel()
			fd, err := CheckBinding(backend, public, tt.field)
			if err != nil {
				t.Fatal(err)
			}
			dst := dynamicpb.NewMessage(backend)
			err = SetBinding(dst, fd, tt.claim)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("SetBinding: %v", err)
				}
				if got := dst.Get(fd).Interface(); got != tt.want || !dst.Has(fd) {
					t.Errorf("field = %#v, want %#v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("SetBinding = nil, want an error; field = %v", dst.Get(fd))
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("SetBinding error %v does not wrap %v", err, tt.err)
			}
			if tt.claim != "" && strings.Contains(err.Error(), tt.claim) {
				t.Errorf("SetBinding error %q repeats the claim", err)
			}
			if !strings.HasPrefix(err.Error(), "binding "+tt.field+": ") {
				t.Errorf("SetBinding error %q does not name the field", err)
			}
			if dst.Has(fd) {
				t.Errorf("field set despite the error: %v", dst.Get(fd))
			}
		})
	}
}
