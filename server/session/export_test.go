package session

import (
	"net/http"
	"time"
)

// StoreKey exposes storeKey: the key the store knows a session id by.
var StoreKey = storeKey

// Key returns the store key of s.
func (s *Session) Key() string { return s.key }

// IDFrom exposes the cookie parser of a Cookie (with its defaults applied).
func IDFrom(c Cookie, header http.Header) string {
	return c.withDefaults().idFrom(header.Values("Cookie"))
}

// OpenPayload opens and decodes a record's sealed payload, as load does.
func (m *Manager) OpenPayload(key string, sealed []byte) error {
	_, err := m.open(key, sealed)
	return err
}

// IndexSizes returns how many subjects and sids the store's indexes hold.
func (s *MemoryStore) IndexSizes() (subjects, sids int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bySubject), len(s.bySID)
}

// WithLeaseTTL sets the refresh lease's TTL in place of RefreshLeaseTTL, so
// that tests of dead holders take a fraction of a second.
func WithLeaseTTL(d time.Duration) Option {
	return optionFunc(func(m *Manager) { m.leaseTTL = d })
}

// LeaseName exposes leaseName: the refresh lease of the session under key.
var LeaseName = leaseName

// HoldsOpened reports whether the cache of opened payloads (the session's
// tokens, decrypted) holds the session under key.
func (m *Manager) HoldsOpened(key string) bool { return m.opened.Contains(key) }
