package storefront

import (
	"strconv"
	"unicode/utf8"
)

// maxPageToken bounds the opaque page tokens clients echo back to us.
const maxPageToken = 512

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

// checkPaging validates a page size against its maximum and a page token.
func checkPaging(f *fieldErrors, pageSize, maxSize int32, pageToken string) {
	if pageSize < 0 || pageSize > maxSize {
		f.add("page_size", "must be between 0 and "+strconv.Itoa(int(maxSize)))
	}
	if len(pageToken) > maxPageToken || !utf8.ValidString(pageToken) {
		f.add("page_token", "is not a token from a previous answer")
	}
}
