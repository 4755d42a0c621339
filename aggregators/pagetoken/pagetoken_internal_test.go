package pagetoken

import (
	"bytes"
	"errors"
	"testing"

	"github.com/custodian-bff/custodian/server/keyring"
)

// TestKeysAreDerived seals a box with the session key itself, as session
// records and login state are sealed, with a page token's additional data:
// it does not open as a page token, so no other box of the session keys can
// be passed off as one.
func TestKeysAreDerived(t *testing.T) {
	t.Parallel()
	k := bytes.Repeat([]byte{7}, keyring.KeySize)
	s, err := New([][]byte{k})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.New([][]byte{k})
	if err != nil {
		t.Fatal(err)
	}
	const purpose = "/acme.catalog.v1.CatalogService/ListProducts"
	box := ring.Seal([]byte("products\x00\x0020"), publicAD(purpose))
	if got, err := s.OpenPublic(purpose, encoding.EncodeToString(box)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a box of the raw session key opened as a page token: %q, %v", got, err)
	}
	if len(box) != boxOverhead+len("products\x00\x0020") {
		t.Errorf("keyring adds %d bytes, boxOverhead says %d", len(box)-len("products\x00\x0020"), boxOverhead)
	}
}

// TestAdditionalDataIsUnambiguous checks that fields cannot slide into
// each other: a purpose ending in what looks like a subject is not the
// same binding.
func TestAdditionalDataIsUnambiguous(t *testing.T) {
	t.Parallel()
	a := appendField(appendField(nil, "ab"), "c")
	b := appendField(appendField(nil, "a"), "bc")
	if bytes.Equal(a, b) {
		t.Error("fields (ab, c) and (a, bc) give the same bytes")
	}
	if bytes.Equal(publicAD("p"), appendField([]byte(adPrefix+string(rune(scopeSession))), "p")) {
		t.Error("public and session scopes give the same bytes")
	}
}
