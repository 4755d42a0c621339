package keyring

import (
	"bytes"
	"errors"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	t.Parallel()
	old, err := New([][]byte{key(1)})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := New([][]byte{key(2), key(1)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New([][]byte{key(3)})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("refresh-token-value")
	box := old.Seal(secret, []byte("session-a"))
	if bytes.Contains(box, secret) {
		t.Fatal("box contains the plaintext")
	}
	if got, err := rotated.Open(box, []byte("session-a")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("rotated ring cannot open an old box: %q, %v", got, err)
	}
	newBox := rotated.Seal(secret, []byte("session-a"))
	if _, err := old.Open(newBox, []byte("session-a")); !errors.Is(err, ErrOpen) {
		t.Fatalf("old ring opened a box sealed with a newer key: %v", err)
	}
	flipped := bytes.Clone(box)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		ring *Ring
		box  []byte
		ad   string
	}{
		"other additional data": {old, box, "session-b"},
		"unknown key":           {other, box, "session-a"},
		"tampered":              {old, flipped, "session-a"},
		"truncated":             {old, box[:len(box)-5], "session-a"},
		"empty":                 {old, nil, "session-a"},
		"wrong version":         {old, append([]byte{9}, box[1:]...), "session-a"},
	}
	for name, c := range cases {
		if _, err := c.ring.Open(c.box, []byte(c.ad)); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: got %v, want ErrOpen", name, err)
		}
	}
	if bytes.Equal(old.Seal(secret, nil), old.Seal(secret, nil)) {
		t.Error("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short key": {make([]byte, 16)},
		"long key":  {key(1), make([]byte, 33)},
	} {
		if _, err := New(keys); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
