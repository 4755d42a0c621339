package storefront

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// pageTokenRefused is the field violation of a page token the service
// will not take: not sealed by it (see [WithPageTokens]) for this listing,
// this query and, for a user's data, this session.
const pageTokenRefused = "is not a token from a previous answer"

// isID reports whether s is 1..64 characters of [A-Za-z0-9_-], the shape of
// every id and key the store hands out.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkPageSize validates a page size against its maximum. Page tokens are
// checked by opening them (see [WithPageTokens]).
func checkPageSize(f *fanout.FieldErrors, pageSize, maxSize int32) {
	if pageSize < 0 || pageSize > maxSize {
		f.Add("page_size", "must be between 0 and "+strconv.Itoa(int(maxSize)))
	}
}

const (
	maxOrderLines   = 20
	maxQuantity     = 99
	maxDisplayName  = 64
	maxLocaleLength = 35
)

// checkPlaceOrder validates an order request field by field.
func checkPlaceOrder(req *storefrontv1.PlaceOrderRequest) error {
	var invalid fanout.FieldErrors
	if k := req.GetIdempotencyKey(); len(k) < 8 || !isID(k) {
		invalid.Add("idempotency_key", "must be 8 to 64 letters, digits, '-' or '_'")
	}
	lines := req.GetLines()
	if len(lines) == 0 || len(lines) > maxOrderLines {
		invalid.Add("lines", "must have 1 to 20 lines")
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		if i >= maxOrderLines {
			break
		}
		field := "lines[" + strconv.Itoa(i) + "]"
		switch id := l.GetProductId(); {
		case !isID(id):
			invalid.Add(field+".product_id", "must be a product id")
		case seen[id]:
			invalid.Add(field+".product_id", "is listed twice; raise the quantity instead")
		default:
			seen[id] = true
		}
		if q := l.GetQuantity(); q < 1 || q > maxQuantity {
			invalid.Add(field+".quantity", "must be between 1 and 99")
		}
	}
	return invalid.Err()
}

// checkUpdateProfile validates a profile change field by field.
func checkUpdateProfile(req *storefrontv1.UpdateProfileRequest) error {
	var invalid fanout.FieldErrors
	name := req.GetDisplayName()
	if n := utf8.RuneCountInString(name); n < 1 || n > maxDisplayName || !utf8.ValidString(name) || strings.TrimSpace(name) == "" || hasControl(name) {
		invalid.Add("display_name", "must be 1 to 64 printable characters")
	}
	if l := req.GetLocale(); l != "" && !isLocale(l) {
		invalid.Add("locale", "must be a language tag such as en-GB")
	}
	return invalid.Err()
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

// isLocale accepts BCP 47-shaped tags: letter/digit subtags of 1 to 8
// characters joined by '-', starting with 2 to 3 letters.
func isLocale(s string) bool {
	if len(s) > maxLocaleLength {
		return false
	}
	for i, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 || (i == 0 && (len(sub) < 2 || len(sub) > 3)) {
			return false
		}
		for _, c := range []byte(sub) {
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && !(i > 0 && c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}
