package storefront

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
)

// refusedFields returns the fields a validation error names in its
// BadRequest detail, failing the test unless err is such an error.
func refusedFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeInvalidArgument {
		t.Fatalf("validation error %v is not invalid_argument", err)
	}
	var fields []string
	for _, d := range connectErr.Details() {
		v, derr := connectproto.UnmarshalErrorDetail(d)
		if derr != nil {
			t.Fatalf("detail: %v", derr)
		}
		br, ok := v.(*custodianv1.BadRequest)
		if !ok {
			t.Fatalf("unexpected detail %T", v)
		}
		for _, fv := range br.GetFieldViolations() {
			if fv.GetDescription() == "" {
				t.Errorf("violation of %s has no description", fv.GetField())
			}
			fields = append(fields, fv.GetField())
		}
	}
	if len(fields) == 0 {
		t.Fatalf("invalid_argument without field violations: %v", err)
	}
	if !strings.HasPrefix(connectErr.Message(), fields[0]+": ") {
		t.Errorf("message %q does not start with the first field %q", connectErr.Message(), fields[0])
	}
	return fields
}

func wantFields(t *testing.T, err error, want []string) {
	t.Helper()
	if got := refusedFields(t, err); !slices.Equal(got, want) {
		t.Errorf("refused fields %q, want %q (error %v)", got, want, err)
	}
}

func lines(n int) []*storefrontv1.PlaceOrderLine {
	var ls []*storefrontv1.PlaceOrderLine
	for i := range n {
		ls = append(ls, &storefrontv1.PlaceOrderLine{ProductId: fmt.Sprintf("p-%d", i), Quantity: 1})
	}
	return ls
}

func line(id string, q int32) *storefrontv1.PlaceOrderLine {
	return &storefrontv1.PlaceOrderLine{ProductId: id, Quantity: q}
}

func TestCheckPlaceOrder(t *testing.T) {
	t.Parallel()
	const key = "order-key_1"
	tooMany := lines(21)
	tooMany[20].ProductId = "bad id" // past the limit: not looked at
	cases := []struct {
		name string
		req  *storefrontv1.PlaceOrderRequest
		want []string // refused fields; nil: valid
	}{
		{"one line", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: lines(1)}, nil},
		{"twenty lines", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: lines(20)}, nil},
		{"shortest key", &storefrontv1.PlaceOrderRequest{IdempotencyKey: "12345678", Lines: lines(1)}, nil},
		{"longest key", &storefrontv1.PlaceOrderRequest{IdempotencyKey: strings.Repeat("k", 64), Lines: lines(1)}, nil},
		{"largest quantity", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", 99)}}, nil},
		{"no key", &storefrontv1.PlaceOrderRequest{Lines: lines(1)}, []string{"idempotency_key"}},
		{"short key", &storefrontv1.PlaceOrderRequest{IdempotencyKey: "1234567", Lines: lines(1)}, []string{"idempotency_key"}},
		{"long key", &storefrontv1.PlaceOrderRequest{IdempotencyKey: strings.Repeat("k", 65), Lines: lines(1)}, []string{"idempotency_key"}},
		{"key with a space", &storefrontv1.PlaceOrderRequest{IdempotencyKey: "order key 1", Lines: lines(1)}, []string{"idempotency_key"}},
		{"key with a slash", &storefrontv1.PlaceOrderRequest{IdempotencyKey: "order/key/1", Lines: lines(1)}, []string{"idempotency_key"}},
		{"no lines", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key}, []string{"lines"}},
		{"too many lines", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: tooMany}, []string{"lines"}},
		{"empty product id", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("", 1)}}, []string{"lines[0].product_id"}},
		{"bad product id", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", 1), line("../p-2", 1)}}, []string{"lines[1].product_id"}},
		{"long product id", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line(strings.Repeat("p", 65), 1)}}, []string{"lines[0].product_id"}},
		{"product listed twice", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", 1), line("p-2", 1), line("p-1", 2)}}, []string{"lines[2].product_id"}},
		{"zero quantity", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", 0)}}, []string{"lines[0].quantity"}},
		{"negative quantity", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", -1)}}, []string{"lines[0].quantity"}},
		{"quantity over 99", &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: []*storefrontv1.PlaceOrderLine{line("p-1", 1), line("p-2", 100)}}, []string{"lines[1].quantity"}},
		{"several faults", &storefrontv1.PlaceOrderRequest{IdempotencyKey: "short", Lines: []*storefrontv1.PlaceOrderLine{line("p 1", 0), line("p-2", 5)}},
			[]string{"idempotency_key", "lines[0].product_id", "lines[0].quantity"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkPlaceOrder(c.req)
			if c.want == nil {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			wantFields(t, err, c.want)
		})
	}
}

func TestCheckUpdateProfile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		dname  string
		locale string
		want   []string
	}{
		{"name only", "Alice", "", nil},
		{"name and locale", "Alice Example", "en-GB", nil},
		{"script subtag", "Alice", "zh-Hant-TW", nil},
		{"64 characters", strings.Repeat("a", 64), "", nil},
		{"64 accented characters", strings.Repeat("é", 64), "", nil},
		{"emoji", "Alice 🦊", "de", nil},
		{"empty name", "", "", []string{"display_name"}},
		{"blank name", "   ", "", []string{"display_name"}},
		{"65 characters", strings.Repeat("a", 65), "", []string{"display_name"}},
		{"65 accented characters", strings.Repeat("é", 65), "", []string{"display_name"}},
		{"control character", "Alice\x07", "", []string{"display_name"}},
		{"newline", "Alice\nBob", "", []string{"display_name"}},
		{"DEL", "Alice\x7f", "", []string{"display_name"}},
		{"line separator", "Alice\u2028", "", []string{"display_name"}},
		{"paragraph separator", "Alice\u2029", "", []string{"display_name"}},
		{"invalid UTF-8", "Alice\xff", "", []string{"display_name"}},
		{"bad locale", "Alice", "en_GB", []string{"locale"}},
		{"one-letter locale", "Alice", "e", []string{"locale"}},
		{"both", "", "english!", []string{"display_name", "locale"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkUpdateProfile(&storefrontv1.UpdateProfileRequest{DisplayName: c.dname, Locale: c.locale})
			if c.want == nil {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			wantFields(t, err, c.want)
		})
	}
}

func TestIsLocale(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want bool
	}{
		{"en", true},
		{"EN", true},
		{"eng", true},
		{"en-GB", true},
		{"es-419", true},
		{"zh-Hant-TW", true},
		{"en-abcdefgh", true},
		{"en-" + strings.Repeat("abcdefgh-", 3) + "abcde", true},   // 35 characters
		{"en-" + strings.Repeat("abcdefgh-", 3) + "abcdef", false}, // 36
		{"", false},
		{"e", false},
		{"engl", false},
		{"e1", false},
		{"12", false},
		{"en-", false},
		{"-en", false},
		{"en--GB", false},
		{"en-abcdefghi", false},
		{"en_GB", false},
		{"en GB", false},
		{"én", false},
		{"en-GB\n", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			if got := isLocale(c.in); got != c.want {
				t.Errorf("isLocale(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestIsID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"p-1", true},
		{"Order_42-x", true},
		{strings.Repeat("z", 64), true},
		{"", false},
		{strings.Repeat("z", 65), false},
		{"a b", false},
		{"a/b", false},
		{"../etc", false},
		{"a.b", false},
		{"a%2F", false},
		{"ä", false},
		{"a\x00", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			if got := isID(c.in); got != c.want {
				t.Errorf("isID(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestCheckPageSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		size int32
		max  int32
		want []string
	}{
		{"default", 0, 50, nil},
		{"largest page", 50, 50, nil},
		{"negative size", -1, 50, []string{"page_size"}},
		{"size over the maximum", 51, 50, []string{"page_size"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var f fanout.FieldErrors
			checkPageSize(&f, c.size, c.max)
			err := f.Err()
			if c.want == nil {
				if err != nil {
					t.Fatalf("valid page size refused: %v", err)
				}
				return
			}
			wantFields(t, err, c.want)
		})
	}
}
