package session

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// MemoryStore is the embedded Store: a bounded map that forgets the least
// recently used session when full. Sessions are lost when the process ends.
type MemoryStore struct {
	now func() time.Time

	mu        sync.Mutex
	lru       *simplelru.LRU[string, Record]
	bySubject map[string]map[string]struct{}
	bySID     map[string]map[string]struct{}
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a store of at most capacity records; now is the
// clock used for expiry (nil means time.Now).
func NewMemoryStore(capacity int, now func() time.Time) (*MemoryStore, error) {
	if capacity <= 0 {
		return nil, errors.New("session: memory store capacity must be positive")
	}
	if now == nil {
		now = time.Now
	}
	s := &MemoryStore{
		now:       now,
		bySubject: make(map[string]map[string]struct{}),
		bySID:     make(map[string]map[string]struct{}),
	}
	lru, err := simplelru.NewLRU(capacity, s.unindex) // called with s.mu held
	if err != nil {
		return nil, err
	}
	s.lru = lru
	return s, nil
}

// Get returns the record for key, or ErrNotFound.
func (s *MemoryStore) Get(_ context.Context, key string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lru.Get(key)
	if !ok {
		return Record{}, ErrNotFound
	}
	if !s.now().Before(rec.Expires) {
		s.lru.Remove(key)
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Put stores rec under key.
func (s *MemoryStore) Put(_ context.Context, key string, rec Record) error {
	rec.Sealed = append([]byte(nil), rec.Sealed...) // the caller keeps its slice
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(key) // drop the old record's index entries
	s.lru.Add(key, rec)
	if rec.Ended == 0 {
		addIndex(s.bySubject, rec.Subject, key)
		addIndex(s.bySID, rec.SID, key)
	}
	s.sweep(sweepPerPut)
	return nil
}

// sweepPerPut is how many expired records a Put may drop. Every session
// begins and ends with a Put, so records expire at least as fast as they
// come: without it, the tombstones of signed-out sessions and the sealed
// tokens of sessions nobody came back to stayed until the store was full.
const sweepPerPut = 8

// sweep drops up to n expired records, the least recently used first,
// stopping at the first one that has not expired. Called with s.mu held.
func (s *MemoryStore) sweep(n int) {
	now := s.now()
	for range n {
		key, rec, ok := s.lru.GetOldest()
		if !ok || now.Before(rec.Expires) {
			return
		}
		s.lru.Remove(key)
	}
}

// Touch updates LastSeen and Expires of a live record.
func (s *MemoryStore) Touch(_ context.Context, key string, lastSeen, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lru.Peek(key)
	if !ok || rec.Ended != 0 || !s.now().Before(rec.Expires) {
		return nil // an expired record is absent: touching must not revive it
	}
	rec.LastSeen, rec.Expires = lastSeen, expires
	s.lru.Add(key, rec) // replaces in place; the index is unchanged
	return nil
}

// UpdateSealed replaces Sealed of a live record.
func (s *MemoryStore) UpdateSealed(_ context.Context, key string, sealed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lru.Peek(key)
	if !ok || rec.Ended != 0 || !s.now().Before(rec.Expires) {
		return ErrNotFound
	}
	rec.Sealed = append([]byte(nil), sealed...)
	s.lru.Add(key, rec)
	return nil
}

// Delete forgets key.
func (s *MemoryStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(key)
	return nil
}

// Find returns the keys of live records matching subject and sid.
func (s *MemoryStore) Find(_ context.Context, subject, sid string) ([]string, error) {
	if subject == "" && sid == "" {
		return nil, errors.New("session: find needs a subject or a sid")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	candidates := s.bySID[sid]
	if sid == "" {
		candidates = s.bySubject[subject]
	}
	now := s.now()
	var keys []string
	for key := range candidates {
		rec, ok := s.lru.Peek(key)
		if !ok || rec.Ended != 0 || !now.Before(rec.Expires) {
			continue
		}
		if subject != "" && rec.Subject != subject {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Len returns how many records the store holds, expired ones included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// unindex is the LRU's eviction callback, also run by Remove.
func (s *MemoryStore) unindex(key string, rec Record) {
	removeIndex(s.bySubject, rec.Subject, key)
	removeIndex(s.bySID, rec.SID, key)
}

func addIndex(index map[string]map[string]struct{}, value, key string) {
	if value == "" {
		return
	}
	keys := index[value]
	if keys == nil {
		keys = make(map[string]struct{})
		index[value] = keys
	}
	keys[key] = struct{}{}
}

func removeIndex(index map[string]map[string]struct{}, value, key string) {
	if keys := index[value]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(index, value)
		}
	}
}
