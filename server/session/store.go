package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for a key it does not hold, or holds
// only past its expiry.
var ErrNotFound = errors.New("session: not found")

// Record is what a Store keeps per session. Everything that identifies or
// describes the user, and every token, is inside Sealed; the clear fields
// are what the store itself needs: expiry and the indexes of back-channel
// logout.
type Record struct {
	Subject        string    // the provider's subject, indexed
	SID            string    // the provider's session id, indexed when set
	Created        time.Time // login time
	LastSeen       time.Time // last use, for the idle timeout
	AbsoluteExpiry time.Time // the session ends then whatever happens
	Expires        time.Time // the store may forget the record after this
	Ended          Reason    // non-zero: a tombstone saying why the session ended
	Sealed         []byte    // the key ring's box of the payload
}

// Store keeps session records by key, an opaque string derived from the
// session id (never the id itself). Implementations must be safe for
// concurrent use, must treat a record past Expires as absent, and must
// pass the suite in package sessiontest.
type Store interface {
	// Get returns the record for key, or ErrNotFound.
	Get(ctx context.Context, key string) (Record, error)
	// Put stores rec under key, replacing any record there.
	Put(ctx context.Context, key string, rec Record) error
	// Touch sets LastSeen and Expires of a live (not ended) record and
	// nothing else, so it never undoes a concurrent token update. A missing
	// record is not an error.
	Touch(ctx context.Context, key string, lastSeen, expires time.Time) error
	// UpdateSealed replaces Sealed of a live record and nothing else. It
	// returns ErrNotFound when the record is missing or ended, so a token
	// refresh never brings an ended session back.
	UpdateSealed(ctx context.Context, key string, sealed []byte) error
	// Delete forgets key. A missing record is not an error.
	Delete(ctx context.Context, key string) error
	// Find returns the keys of live records whose Subject is subject (when
	// subject is not empty) and whose SID is sid (when sid is not empty).
	// At least one of them must be set.
	Find(ctx context.Context, subject, sid string) ([]string, error)
}
