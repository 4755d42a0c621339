// Package redisstore keeps sessions in Redis, so that several gateway
// replicas share them: a [session.Store], a [session.Leaser] (the
// manager's one-refresh-per-session lease across replicas) and a
// [session.Pinger] (readiness).
//
// It works with any [redis.UniversalClient]: a single server, Sentinel or
// Cluster. The caller makes and closes the client; [DefaultPoolSize] and
// the timeouts below are the defaults Custodian's configuration gives it.
//
// # Keys
//
// With the default prefix "custodian:", a store uses these keys:
//
//	custodian:s:{<key>}         the record of the session with store key <key>, a string
//	custodian:sub:{<hash>}      the sessions of a subject, a sorted set
//	custodian:sid:{<hash>}      the sessions of a provider session id, a sorted set
//	custodian:lease:{<name>}    a lease, a string holding its holder's token
//
// <hash> is the first 128 bits of the SHA-256 of the subject or sid, in
// unpadded base64url: index keys have a bounded length whatever the
// provider sends. The part in braces is the Cluster hash tag.
//
// An index spans sessions, so a session's record and its index entries
// cannot all share a Cluster slot. Instead every command and every Lua
// script reads and writes exactly one key: nothing can fail with CROSSSLOT,
// on any topology. Indexes are kept consistent by the order of writes and
// by checking on read:
//
//   - Put writes the index entries first, then the record. A Put that fails
//     half way leaves at most an index entry without its record.
//   - Find reads the candidates from the index, then their records, and
//     returns only live records whose Subject and SID match. An entry whose
//     record is gone, ended or replaced is skipped.
//   - An index entry is scored with the time until which its record may
//     live (at least its Expires and AbsoluteExpiry). Every write and read
//     of an index drops the entries whose time has passed, and the index
//     key's TTL outlasts its latest entry, so indexes expire with their
//     records. A Touch that extends a record past that time extends its
//     entries first (for the manager's sessions, at most once in a
//     session's life: Expires passes AbsoluteExpiry only in the last idle
//     period).
//
// # Records
//
// A record is one string (see record.go): a fixed header (version, Ended,
// the times, the index time), Subject and SID, which are in the clear in
// [session.Record] too, and Sealed, the key ring's box, as is. Its Redis
// TTL ends it at Expires. Touch and UpdateSealed are Lua scripts that
// change the record only when it is live, atomically: Touch rewrites
// LastSeen and Expires and keeps everything else, so it never undoes a
// concurrent UpdateSealed, and neither brings back a record that a Put
// ended or a Delete removed.
//
// # Time
//
// Expiry decisions use the store's clock ([WithClock]), not the Redis
// server's: TTLs are set relative to it, and a record or index entry past
// its time is treated as absent even before Redis drops it.
//
// # Errors
//
// Errors of the client are returned wrapped (%w), never as
// [session.ErrNotFound], which is only for a key the store does not hold:
// an unreachable Redis must not look like a signed-out user. Nothing is
// deleted or overwritten because of an error.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/custodian-bff/custodian/server/session"
)

// Defaults of the client options, also the configuration's defaults
// (session.redis_pool_size and the session.redis_*_timeout fields). They
// keep a call that needs Redis from waiting long when Redis is away: it
// fails, and the gateway answers unavailable.
const (
	// DefaultPoolSize is the most connections a client keeps to one Redis
	// server (per node in a Cluster).
	DefaultPoolSize = 100
	// DefaultDialTimeout bounds connecting to Redis.
	DefaultDialTimeout = 2 * time.Second
	// DefaultReadTimeout bounds waiting for a reply.
	DefaultReadTimeout = time.Second
	// DefaultWriteTimeout bounds sending a command.
	DefaultWriteTimeout = time.Second
	// DefaultPrefix starts every key of a store.
	DefaultPrefix = "custodian:"
)

// Store is a session store in Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

var (
	_ session.Store  = (*Store)(nil)
	_ session.Leaser = (*Store)(nil)
	_ session.Pinger = (*Store)(nil)
)

// Option configures a Store.
type Option interface {
	apply(*Store)
}

type optionFunc func(*Store)

func (f optionFunc) apply(s *Store) { f(s) }

// WithPrefix starts every key with prefix, so that several deployments can
// share a Redis database. Default: [DefaultPrefix].
func WithPrefix(prefix string) Option {
	return optionFunc(func(s *Store) { s.prefix = prefix })
}

// WithClock sets the clock for expiry decisions. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(s *Store) { s.now = now })
}

// New returns a store on client. The caller keeps the client and closes it
// after the store's last use.
func New(client redis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client, prefix: DefaultPrefix, now: time.Now}
	for _, opt := range opts {
		opt.apply(s)
	}
	return s
}

// Client returns the store's client, so that other state the replicas
// share (rate limits) uses the same Redis and connections.
func (s *Store) Client() redis.UniversalClient { return s.client }

func (s *Store) recordKey(key string) string { return s.prefix + "s:{" + key + "}" }

func (s *Store) subjectKey(subject string) string { return s.prefix + "sub:{" + digest(subject) + "}" }

func (s *Store) sidKey(sid string) string { return s.prefix + "sid:{" + digest(sid) + "}" }

func (s *Store) leaseKey(name string) string { return s.prefix + "lease:{" + name + "}" }

// digest names an index: 128 bits of SHA-256, unpadded base64url.
func digest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Get returns the record for key, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	v, err := s.client.Get(ctx, s.recordKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: get: %w", err)
	}
	d, err := decodeRecord(v)
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: get: %w", err)
	}
	if !s.now().Before(d.Expires) {
		return session.Record{}, session.ErrNotFound
	}
	return d.Record, nil
}

// Put stores rec under key, replacing any record there: the index entries
// of a live record first, then the record.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) error {
	if err := checkRecord(&rec); err != nil {
		return err
	}
	now := s.now()
	ttl := ttlMillis(now, rec.Expires)
	if ttl <= 0 {
		// Stored, it would be absent at once: a Put of an expired record
		// leaves no record, as the contract's expiry says.
		if err := s.client.Del(ctx, s.recordKey(key)).Err(); err != nil {
			return fmt.Errorf("redisstore: put: %w", err)
		}
		return nil
	}
	indexedUntil := uint64(notIndexed)
	if rec.Ended == 0 && (rec.Subject != "" || rec.SID != "") {
		until := rec.Expires
		if rec.AbsoluteExpiry.After(until) {
			until = rec.AbsoluteExpiry
		}
		if err := s.index(ctx, key, rec.Subject, rec.SID, now, until); err != nil {
			return fmt.Errorf("redisstore: put: %w", err)
		}
		indexedUntil = encodeTime(until)
	}
	v := encodeRecord(make([]byte, 0, headerSize+4+len(rec.Subject)+len(rec.SID)+len(rec.Sealed)), &rec, indexedUntil)
	if err := s.client.Set(ctx, s.recordKey(key), v, time.Duration(ttl)*time.Millisecond).Err(); err != nil {
		return fmt.Errorf("redisstore: put: %w", err)
	}
	return nil
}

// index adds key to the indexes of subject and sid (those not empty),
// until the given time.
func (s *Store) index(ctx context.Context, key, subject, sid string, now, until time.Time) error {
	nowMS, untilMS := strconv.FormatInt(floorMillis(now), 10), strconv.FormatInt(ceilMillis(until), 10)
	if subject != "" {
		if err := indexScript.Run(ctx, s.client, []string{s.subjectKey(subject)}, nowMS, untilMS, key).Err(); err != nil {
			return fmt.Errorf("subject index: %w", err)
		}
	}
	if sid != "" {
		if err := indexScript.Run(ctx, s.client, []string{s.sidKey(sid)}, nowMS, untilMS, key).Err(); err != nil {
			return fmt.Errorf("sid index: %w", err)
		}
	}
	return nil
}

// touchAttempts bounds the rounds of Touch that extend index entries: a
// round fails only when a concurrent Put replaced the record meanwhile.
const touchAttempts = 3

// Touch sets LastSeen and Expires of a live record, atomically. A record
// that is missing, ended or expired is left alone, without an error.
func (s *Store) Touch(ctx context.Context, key string, lastSeen, expires time.Time) error {
	if !timeInRange(lastSeen) || !timeInRange(expires) {
		return fmt.Errorf("redisstore: touch: time out of range")
	}
	now := s.now()
	rkey := []string{s.recordKey(key)}
	nowB, lastSeenB, expiresB := timeBytes(now), timeBytes(lastSeen), timeBytes(expires)
	ttl := strconv.FormatInt(max(ttlMillis(now, expires), 1), 10)
	indexed, indexedUntil := "", ""
	for range touchAttempts {
		n, err := touchScript.Run(ctx, s.client, rkey, nowB, lastSeenB, expiresB, ttl, indexed, indexedUntil).Int()
		if err != nil {
			return fmt.Errorf("redisstore: touch: %w", err)
		}
		if n != -1 {
			return nil
		}
		// The record outlives its index entries: extend them, then touch
		// again saying which entries were extended.
		v, err := s.client.Get(ctx, rkey[0]).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("redisstore: touch: %w", err)
		}
		d, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("redisstore: touch: %w", err)
		}
		if d.Ended != 0 || !now.Before(d.Expires) {
			return nil
		}
		if err := s.index(ctx, key, d.Subject, d.SID, now, expires); err != nil {
			return fmt.Errorf("redisstore: touch: %w", err)
		}
		indexed, indexedUntil = string(appendIndexed(nil, d.Subject, d.SID)), string(expiresB)
	}
	return fmt.Errorf("redisstore: touch: record %s kept changing", key)
}

// UpdateSealed replaces Sealed of a live record, atomically, or returns
// session.ErrNotFound.
func (s *Store) UpdateSealed(ctx context.Context, key string, sealed []byte) error {
	n, err := updateSealedScript.Run(ctx, s.client, []string{s.recordKey(key)}, timeBytes(s.now()), sealed).Int()
	if err != nil {
		return fmt.Errorf("redisstore: update sealed: %w", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// Delete removes the record under key. Its index entries are left to
// expire: Find skips them.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.recordKey(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// Find returns the keys of live records of subject and sid.
func (s *Store) Find(ctx context.Context, subject, sid string) ([]string, error) {
	if subject == "" && sid == "" {
		return nil, errors.New("redisstore: find needs a subject or a sid")
	}
	index := s.sidKey(sid) // the narrower one
	if sid == "" {
		index = s.subjectKey(subject)
	}
	now := s.now()
	candidates, err := findScript.Run(ctx, s.client, []string{index}, strconv.FormatInt(floorMillis(now), 10)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: find: %w", err)
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	// One GET per record, pipelined: the records are in different slots.
	cmds := make([]*redis.StringCmd, len(candidates))
	_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range candidates {
			cmds[i] = p.Get(ctx, s.recordKey(key))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: find: %w", err)
	}
	var keys []string
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: find: %w", err)
		}
		d, err := decodeRecord(v)
		if err != nil {
			return nil, fmt.Errorf("redisstore: find: %w", err)
		}
		if d.Ended != 0 || !now.Before(d.Expires) ||
			subject != "" && d.Subject != subject || sid != "" && d.SID != sid {
			continue
		}
		keys = append(keys, candidates[i])
	}
	return keys, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Lease takes the lease named name for ttl (rounded up to a millisecond),
// or returns session.ErrLeaseHeld while another holder has it.
func (s *Store) Lease(ctx context.Context, name string, ttl time.Duration) (session.Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("redisstore: lease: ttl %v is not positive", ttl)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	l := &lease{s: s, key: s.leaseKey(name), token: rand.Text(), ttl: ttl}
	ok, err := s.client.SetNX(ctx, l.key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: lease: %w", err)
	}
	if !ok {
		return nil, session.ErrLeaseHeld
	}
	return l, nil
}

// lease is a lease held: its key holds token until it expires.
type lease struct {
	s     *Store
	key   string
	token string // random, this holder's
	ttl   time.Duration
}

// Renew extends the lease to its TTL from now. It fails, wrapping
// session.ErrLeaseHeld, once the lease has expired, whether or not another
// holder has taken it since: a holder cannot know whether another came,
// refreshed and went meanwhile.
func (l *lease) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, l.s.client, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: renew lease: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: renew lease: lost: %w", session.ErrLeaseHeld)
	}
	return nil
}

// Release gives the lease up if this holder still has it; otherwise it
// does nothing.
func (l *lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.s.client, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("redisstore: release lease: %w", err)
	}
	return nil
}

// ttlMillis returns the milliseconds from now to t, rounded up.
func ttlMillis(now, t time.Time) int64 {
	d := t.Sub(now)
	ms := d.Milliseconds()
	if d > time.Duration(ms)*time.Millisecond {
		ms++
	}
	return ms
}

func floorMillis(t time.Time) int64 {
	return t.UnixNano() / 1e6 // times are after 1970: no negative rounding
}

func ceilMillis(t time.Time) int64 {
	return (t.UnixNano() + 1e6 - 1) / 1e6
}
