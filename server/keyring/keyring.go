// Package keyring seals small secrets (held tokens, login state) with
// AES-256-GCM under a ring of keys: the first key seals, every key opens, so
// keys rotate without signing anyone out.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

const (
	version  = 1
	idSize   = 4
	overhead = 1 + idSize + 12 + 16 // version, key id, nonce, GCM tag
)

// ErrOpen is returned for anything that cannot be opened: a tampered or
// truncated box, a box sealed for other additional data, or one sealed with
// a key that is no longer in the ring.
var ErrOpen = errors.New("keyring: cannot open")

// Ring seals with its first key and opens with any. It is safe for
// concurrent use.
type Ring struct {
	keys []ringKey
}

type ringKey struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// New returns a ring of keys, each KeySize bytes; keys[0] seals.
func New(keys [][]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	r := &Ring{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("keyring: key %d has %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i, err)
		}
		sum := sha256.Sum256(k)
		var id [idSize]byte
		copy(id[:], sum[:])
		r.keys = append(r.keys, ringKey{id: id, aead: aead})
	}
	return r, nil
}

// Seal encrypts plaintext bound to additional data ad (e.g. the session it
// belongs to), so a box moved to another context does not open.
func (r *Ring) Seal(plaintext, ad []byte) []byte {
	k := r.keys[0]
	out := make([]byte, 1+idSize+k.aead.NonceSize(), overhead+len(plaintext))
	out[0] = version
	copy(out[1:], k.id[:])
	nonce := out[1+idSize:]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms.
	return k.aead.Seal(out, nonce, plaintext, ad)
}

// Open decrypts a box made by Seal with the same additional data.
func (r *Ring) Open(box, ad []byte) ([]byte, error) {
	if len(box) < overhead || box[0] != version {
		return nil, ErrOpen
	}
	for _, k := range r.keys {
		if [idSize]byte(box[1:1+idSize]) != k.id {
			continue
		}
		nonceEnd := 1 + idSize + k.aead.NonceSize()
		plaintext, err := k.aead.Open(nil, box[1+idSize:nonceEnd], box[nonceEnd:], ad)
		if err != nil {
			return nil, ErrOpen
		}
		return plaintext, nil
	}
	return nil, ErrOpen
}
