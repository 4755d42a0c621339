package backends

import (
	"encoding/base64"
	"strconv"
	"strings"

	"connectrpc.com/connect/v2"
)

// pageToken is the decoded form of an opaque page token: which listing it
// belongs to, the filter it was issued for, and where the next page starts.
// Tokens are only base64 encoded, not signed: they carry no secrets and a
// forged one can at most skip to another page of the caller's own data.
type pageToken struct {
	kind   string // "products" or "orders"
	filter string // must match the request that presents the token
	offset int
}

func (t pageToken) encode() string {
	raw := t.kind + "\x00" + t.filter + "\x00" + strconv.Itoa(t.offset)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodePageToken parses token, which must have been issued for the same
// kind of listing and filter. The empty token means the first page.
func decodePageToken(token, kind, filter string) (pageToken, bool, error) {
	if token == "" {
		return pageToken{}, false, nil
	}
	invalid := connect.NewError(connect.CodeInvalidArgument, "invalid page_token")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return pageToken{}, false, invalid
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[0] != kind {
		return pageToken{}, false, invalid
	}
	if parts[1] != filter {
		return pageToken{}, false, connect.NewError(connect.CodeInvalidArgument, "page_token was issued for a different query")
	}
	offset, err := strconv.Atoi(parts[2])
	if err != nil || offset < 0 {
		return pageToken{}, false, invalid
	}
	return pageToken{kind: kind, filter: filter, offset: offset}, true, nil
}

// pageSize validates a requested page size and applies the default for 0.
func pageSize(requested int32, defaultSize, maxSize int) (int, error) {
	switch {
	case requested == 0:
		return defaultSize, nil
	case requested < 0 || int(requested) > maxSize:
		return 0, connect.NewError(connect.CodeInvalidArgument,
			"page_size must be between 0 and "+strconv.Itoa(maxSize))
	default:
		return int(requested), nil
	}
}
