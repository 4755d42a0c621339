// Package pagetoken seals the page tokens of backends before they reach a
// browser, for aggregators that page through a backend's listing.
//
// A backend's page token often shows how the backend keys its data (a
// table name, a user id, an offset), and a browser that can edit it can try
// other keys. A [Sealer] turns it into an opaque token that only the gateway
// holding the same keys opens, and only for the use it was sealed for:
//
//	// In the handler, after session.Require:
//	backendToken, err := s.pageTokens.OpenForSession(ctx, ordersv1connect.OrderServiceListOrdersProcedure, req.GetPageToken())
//	if err != nil {
//		invalid.Add("page_token", "is not a token from a previous answer")
//	}
//	...
//	next, err := s.pageTokens.SealForSession(ctx, ordersv1connect.OrderServiceListOrdersProcedure, res.GetNextPageToken())
//
// The purpose names the backend listing the token is fed back to (its
// procedure, plus any filter the backend binds its tokens to), so a token
// of one listing is refused by another before any backend sees it. Tokens
// of a user's data are sealed with [Sealer.SealForSession], which also binds
// them to the caller's session: another session, or another user, cannot use
// them. Tokens of data every caller may see (a public catalog) are sealed
// with [Sealer.SealPublic].
//
// Tokens are AES-256-GCM boxes under keys derived from the gateway's session
// keys, base64url without padding. The first key seals and every key opens,
// so a token sealed before a key rotation still opens while its key stays in
// the ring. A sealed token is at most [MaxLen] characters; a token longer
// than that is refused before it is decoded.
package pagetoken

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/session"
)

const (
	// MaxTokenLen is the longest backend page token Seal takes, in bytes.
	MaxTokenLen = 1024
	// MaxLen is the longest sealed token, in characters: what a sealed
	// [MaxTokenLen]-byte token encodes to. Open refuses longer ones unread.
	MaxLen = ((boxOverhead+MaxTokenLen)*8 + 5) / 6 // base64url without padding

	// boxOverhead is what a keyring box adds to its plaintext: version,
	// key id, nonce and GCM tag.
	boxOverhead = 1 + 4 + 12 + 16
)

// keyInfo separates the page-token keys from every other use of the
// session keys: they are derived with HKDF, so a page token's box can never
// be taken for a session record or login state, and the many boxes sealed
// for page tokens do not count against the session keys' nonce budget.
const keyInfo = "custodian page tokens v1"

// adPrefix starts the additional data of every box, naming the format.
const adPrefix = "custodian.pagetoken.v1\x00"

var (
	// ErrInvalid is returned by the Open methods for a token they will not
	// open: not one this gateway sealed, sealed for another purpose or
	// session, tampered with, truncated, too long, or sealed with a key that
	// has left the ring. Answer it as an invalid page_token field; never
	// pass the token on.
	ErrInvalid = errors.New("pagetoken: not a page token issued for this request")
	// ErrTooLong is returned by the Seal methods for a backend token longer
	// than MaxTokenLen bytes.
	ErrTooLong = errors.New("pagetoken: backend page token too long")
)

// Sealer seals and opens page tokens. It is safe for concurrent use. A
// gateway makes one from its session keys (custodian's Gateway.PageTokens);
// New makes one from keys of your own.
type Sealer struct {
	ring *keyring.Ring
}

// New returns a Sealer on keys of [keyring.KeySize] bytes each, the
// gateway's session keys: keys[0] seals, every key opens. The keys are not
// used directly: each is turned into a page-token key with HKDF-SHA256.
func New(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("pagetoken: no keys")
	}
	derived := make([][]byte, len(keys))
	for i, k := range keys {
		if len(k) != keyring.KeySize {
			return nil, fmt.Errorf("pagetoken: key %d has %d bytes, want %d", i, len(k), keyring.KeySize)
		}
		d, err := hkdf.Key(sha256.New, k, nil, keyInfo, keyring.KeySize)
		if err != nil {
			return nil, fmt.Errorf("pagetoken: key %d: %w", i, err)
		}
		derived[i] = d
	}
	ring, err := keyring.New(derived)
	if err != nil {
		return nil, fmt.Errorf("pagetoken: %w", err)
	}
	return &Sealer{ring: ring}, nil
}

// SealPublic returns the browser's token for a backend's page token of
// data that every caller may see: bound to purpose only. The empty token
// (no further page) stays empty.
func (s *Sealer) SealPublic(purpose, token string) (string, error) {
	return s.seal(publicAD(purpose), token)
}

// OpenPublic returns the backend's page token that sealed holds, which
// [Sealer.SealPublic] sealed for purpose, or [ErrInvalid]. The empty token
// (the first page) opens to the empty token.
func (s *Sealer) OpenPublic(purpose, sealed string) (string, error) {
	return s.open(publicAD(purpose), sealed)
}

// SealForSession returns the browser's token for a backend's page token of
// the signed-in user's data: bound to purpose and to the caller's session
// (see session.Require), so no other session opens it. The empty token (no
// further page) stays empty. Without a session in ctx it returns
// session.Require's error and no token.
func (s *Sealer) SealForSession(ctx context.Context, purpose, token string) (string, error) {
	sess, err := session.Require(ctx)
	if err != nil {
		return "", err
	}
	return s.seal(sessionAD(purpose, sess), token)
}

// OpenForSession returns the backend's page token that sealed holds, which
// [Sealer.SealForSession] sealed for purpose in the caller's session, or
// [ErrInvalid] (also when ctx carries no session: call session.Require
// first to tell the caller to sign in). The empty token (the first page)
// opens to the empty token.
func (s *Sealer) OpenForSession(ctx context.Context, purpose, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	sess, ok := session.FromContext(ctx)
	if !ok {
		return "", ErrInvalid
	}
	return s.open(sessionAD(purpose, sess), sealed)
}

// encoding is base64url without padding, refusing non-zero padding bits so
// that each box has exactly one spelling.
var encoding = base64.RawURLEncoding.Strict()

func (s *Sealer) seal(ad []byte, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(token) > MaxTokenLen {
		return "", ErrTooLong
	}
	return encoding.EncodeToString(s.ring.Seal([]byte(token), ad)), nil
}

func (s *Sealer) open(ad []byte, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if len(sealed) > MaxLen || len(sealed) < encoding.EncodedLen(boxOverhead+1) {
		return "", ErrInvalid
	}
	box, err := encoding.DecodeString(sealed)
	if err != nil {
		return "", ErrInvalid
	}
	token, err := s.ring.Open(box, ad)
	if err != nil || len(token) == 0 {
		return "", ErrInvalid
	}
	return string(token), nil
}

// Scopes of the additional data: a public token never opens as a session's
// and the other way round, whatever the purpose.
const (
	scopePublic  = 'P'
	scopeSession = 'S'
)

func publicAD(purpose string) []byte {
	return appendField(append([]byte(adPrefix), scopePublic), purpose)
}

// sessionAD binds to the session's subject and its logout id: a random id
// made for each session, kept across token refreshes, never the cookie.
func sessionAD(purpose string, sess *session.Session) []byte {
	ad := appendField(append([]byte(adPrefix), scopeSession), purpose)
	ad = appendField(ad, sess.User.Subject)
	return appendField(ad, sess.LogoutID)
}

// appendField appends s with its length first, so that no two lists of
// fields make the same bytes.
func appendField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
