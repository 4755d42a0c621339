package redisstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/redisstore"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
)

// testTimeout is the tests' dial, read and write timeout: short, so that
// the outage tests are quick.
const testTimeout = 500 * time.Millisecond

// newClient returns a client of srv with the tests' timeouts, closed when
// t ends.
func newClient(t testing.TB, c redisstore.ClientConfig) redis.UniversalClient {
	t.Helper()
	c.DialTimeout, c.ReadTimeout, c.WriteTimeout = testTimeout, testTimeout, testTimeout
	client, err := redisstore.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// prefixes makes each store of a test binary use keys of its own.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func suite(client redis.UniversalClient) func(t *testing.T, now func() time.Time) session.Store {
	return func(t *testing.T, now func() time.Time) session.Store {
		return redisstore.New(client, redisstore.WithPrefix(newPrefix()), redisstore.WithClock(now))
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sessiontest.Run(t, suite(newClient(t, redisstore.ClientConfig{URL: srv.URL()})))
}

// TestStoreCluster runs the suite on a Redis Cluster node, which refuses
// with CROSSSLOT any command or script whose keys span slots, and checks
// besides that every command the store sends has its keys in one slot.
func TestStoreCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithCluster())
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL(), Cluster: true})
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("client is a %T, want a cluster client", client)
	}
	checker := &slotChecker{t: t, admin: redis.NewClient(&redis.Options{Addr: srv.Addr()})}
	t.Cleanup(func() { checker.admin.Close() })
	client.AddHook(checker)
	t.Run("suite", func(t *testing.T) {
		sessiontest.Run(t, suite(client))
	})
	t.Run("leases", func(t *testing.T) {
		s := redisstore.New(client, redisstore.WithPrefix(newPrefix()))
		l, err := s.Lease(t.Context(), "refresh:abc", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("extending index entries", func(t *testing.T) {
		s := redisstore.New(client, redisstore.WithPrefix(newPrefix()))
		now := time.Now()
		rec := liveRecord(now, "alice", "sid-1")
		rec.AbsoluteExpiry = now.Add(time.Minute)
		mustPut(t, s, "k", rec)
		if err := s.Touch(t.Context(), "k", now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
	checker.mu.Lock()
	defer checker.mu.Unlock()
	for _, name := range []string{"get", "set", "del", "evalsha", "ping"} {
		if checker.seen[name] == 0 {
			t.Errorf("no %s command was checked: %v", name, checker.seen)
		}
	}
	t.Logf("commands checked: %v", checker.seen)
}

// slotChecker is a client hook that fails the test for a command whose
// keys are not all in one slot, as CLUSTER KEYSLOT computes it. The keys
// are those COMMAND GETKEYS names for the first commands of each kind;
// later ones, for speed, by the same rule checked against it.
type slotChecker struct {
	t     *testing.T
	admin *redis.Client // unhooked, to the cluster node

	mu    sync.Mutex
	seen  map[string]int   // commands checked, by name
	slots map[string]int64 // by key
}

// verifiedPerCommand is how many commands of each kind are checked with
// COMMAND GETKEYS.
const verifiedPerCommand = 50

func (c *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.check(cmd)
		return next(ctx, cmd)
	}
}

func (c *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.check(cmd)
		}
		return next(ctx, cmds)
	}
}

// keysOf returns the keys of the commands the store sends.
func keysOf(args []any) []string {
	name := strings.ToLower(fmt.Sprint(args[0]))
	switch name {
	case "ping":
		return nil
	case "eval", "evalsha":
		n, _ := strconv.Atoi(fmt.Sprint(args[2]))
		keys := make([]string, n)
		for i := range n {
			keys[i] = fmt.Sprint(args[3+i])
		}
		return keys
	default:
		return []string{fmt.Sprint(args[1])}
	}
}

func (c *slotChecker) check(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	switch name {
	case "hello", "client", "cluster", "command", "auth", "select", "readonly":
		return // the client's own housekeeping
	}
	ctx := context.Background()
	keys := keysOf(cmd.Args())
	c.mu.Lock()
	if c.seen == nil {
		c.seen, c.slots = map[string]int{}, map[string]int64{}
	}
	c.seen[name]++
	verify := c.seen[name] <= verifiedPerCommand && name != "ping"
	c.mu.Unlock()
	if verify {
		want, err := c.admin.Do(ctx, append([]any{"command", "getkeys"}, cmd.Args()...)...).StringSlice()
		if err != nil {
			c.t.Errorf("COMMAND GETKEYS %v: %v", cmd.Args(), err)
			return
		}
		if !slices.Equal(keys, want) {
			c.t.Errorf("%v: keys %q, COMMAND GETKEYS says %q", cmd.Args(), keys, want)
		}
	}
	if name != "ping" && len(keys) != 1 {
		c.t.Errorf("%v: %d keys, want each command on one key", cmd.Args(), len(keys))
	}
	slots := map[int64]bool{}
	for _, key := range keys {
		c.mu.Lock()
		slot, ok := c.slots[key]
		c.mu.Unlock()
		if !ok {
			var err error
			if slot, err = c.admin.ClusterKeySlot(ctx, key).Result(); err != nil {
				c.t.Errorf("CLUSTER KEYSLOT %q: %v", key, err)
				return
			}
			c.mu.Lock()
			c.slots[key] = slot
			c.mu.Unlock()
		}
		slots[slot] = true
	}
	if len(slots) > 1 {
		c.t.Errorf("%v: keys %q span slots %v", cmd.Args(), keys, slots)
	}
}

func liveRecord(now time.Time, subject, sid string) session.Record {
	return session.Record{
		Subject:        subject,
		SID:            sid,
		Created:        now,
		LastSeen:       now,
		AbsoluteExpiry: now.Add(12 * time.Hour),
		Expires:        now.Add(time.Hour),
		Sealed:         []byte("sealed/" + subject + "/" + sid),
	}
}

func mustPut(t testing.TB, s session.Store, key string, rec session.Record) {
	t.Helper()
	if err := s.Put(context.Background(), key, rec); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// The documented key layout, which the tests look at directly.
func recordKey(prefix, key string) string { return prefix + "s:{" + key + "}" }

func subjectKey(prefix, subject string) string { return prefix + "sub:{" + digest(subject) + "}" }

func sidKey(prefix, sid string) string { return prefix + "sid:{" + digest(sid) + "}" }

func digest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// TestTTL checks that Redis itself forgets records and index entries when
// they expire, on the real clock.
func TestTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	prefix := newPrefix()
	s := redisstore.New(client, redisstore.WithPrefix(prefix))
	ctx := t.Context()
	const short = 300 * time.Millisecond

	now := time.Now()
	shortRec := liveRecord(now, "alice", "sid-short")
	shortRec.Expires, shortRec.AbsoluteExpiry = now.Add(short), now.Add(short)
	touched := shortRec
	touched.SID = "sid-touched"
	mustPut(t, s, "short", shortRec)
	mustPut(t, s, "touched", touched)
	mustPut(t, s, "long", liveRecord(now, "alice", "sid-long"))
	// Touched past its index time: its entries must be extended.
	if err := s.Touch(ctx, "touched", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for key, want := range map[string]time.Duration{
		recordKey(prefix, "short"):        short,
		sidKey(prefix, "sid-short"):       short,
		recordKey(prefix, "touched"):      time.Hour,
		sidKey(prefix, "sid-touched"):     time.Hour,
		recordKey(prefix, "long"):         time.Hour,
		sidKey(prefix, "sid-long"):        12 * time.Hour, // the record's AbsoluteExpiry
		subjectKey(prefix, "alice"):       12 * time.Hour,
		sidKey(prefix, "sid-not-indexed"): -2 * time.Nanosecond, // absent
	} {
		if got := pttl(key); got > want+time.Millisecond || got < want-time.Minute || want < 0 && got != want {
			t.Errorf("PTTL %s = %v, want about %v", key, got, want)
		}
	}

	time.Sleep(short + 100*time.Millisecond)
	for _, key := range []string{recordKey(prefix, "short"), sidKey(prefix, "sid-short")} {
		if n, err := client.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("EXISTS %s = %d, %v after expiry; want 0", key, n, err)
		}
	}
	keys, err := s.Find(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(keys); !slices.Equal(keys, []string{"long", "touched"}) {
		t.Errorf("Find(alice) = %q, want [long touched]", keys)
	}
	if keys, err := s.Find(ctx, "", "sid-touched"); err != nil || !slices.Equal(keys, []string{"touched"}) {
		t.Errorf("Find(sid-touched) = %q, %v; want [touched]", keys, err)
	}
	// Find dropped the expired entry from the subject's index.
	members, err := client.ZRange(ctx, subjectKey(prefix, "alice"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(members); !slices.Equal(members, []string{"long", "touched"}) {
		t.Errorf("subject index holds %q, want [long touched]", members)
	}
}

// TestIndexesNeverOutliveLiveRecords checks, on the store's clock, that
// index entries are dropped once their time passes and never before their
// record's Expires, however Touch moves it.
func TestIndexesNeverOutliveLiveRecords(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	clock := sessiontest.NewClock(sessiontest.Epoch)
	prefix := newPrefix()
	s := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithClock(clock.Now))
	ctx := t.Context()

	now := clock.Now()
	rec := liveRecord(now, "alice", "sid-1")
	rec.Expires, rec.AbsoluteExpiry = now.Add(time.Minute), now.Add(2*time.Minute)
	mustPut(t, s, "k", rec)
	// Each Touch slides Expires an hour ahead of the clock, past the index
	// time.
	for i := range 5 {
		if i == 0 {
			clock.Advance(50 * time.Second)
		} else {
			clock.Advance(50 * time.Minute)
		}
		if err := s.Touch(ctx, "k", clock.Now(), clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, q := range [][2]string{{"alice", ""}, {"", "sid-1"}, {"alice", "sid-1"}} {
			if keys, err := s.Find(ctx, q[0], q[1]); err != nil || !slices.Equal(keys, []string{"k"}) {
				t.Fatalf("at %v: Find(%q, %q) = %q, %v; want [k]", clock.Now().Sub(now), q[0], q[1], keys, err)
			}
		}
	}
	clock.Advance(time.Hour + time.Second)
	// An index write drops the entry whose time has passed.
	mustPut(t, s, "other", liveRecord(clock.Now(), "alice", "sid-2"))
	members, err := client.ZRange(ctx, subjectKey(prefix, "alice"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(members, []string{"other"}) {
		t.Errorf("subject index holds %q, want [other]", members)
	}
}

// TestEndWins checks that Touch and UpdateSealed racing a Put that ends the
// session never bring it back, and that Touch never undoes an UpdateSealed.
func TestEndWins(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := redisstore.New(newClient(t, redisstore.ClientConfig{URL: srv.URL()}), redisstore.WithPrefix(newPrefix()))
	ctx := t.Context()
	now := time.Now()
	tombstone := session.Record{Created: now, LastSeen: now, AbsoluteExpiry: now, Expires: now.Add(time.Hour), Ended: session.ReasonSignedOut}

	for i := range 50 {
		key := fmt.Sprintf("k%d", i)
		mustPut(t, s, key, liveRecord(now, "alice", "sid"))
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for j := range 10 {
					if w%2 == 0 {
						_ = s.Touch(ctx, key, now.Add(time.Duration(j)*time.Second), now.Add(2*time.Hour))
					} else {
						_ = s.UpdateSealed(ctx, key, []byte("refreshed"))
					}
				}
			})
		}
		wg.Go(func() { mustPut(t, s, key, tombstone) })
		wg.Wait()
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Ended != session.ReasonSignedOut || got.Sealed != nil || !got.Expires.Equal(tombstone.Expires) {
			t.Fatalf("%s: %+v; want the tombstone, untouched", key, got)
		}
	}

	// One writer of tokens, one toucher: the last tokens stay.
	mustPut(t, s, "tokens", liveRecord(now, "bob", "sid"))
	var wg sync.WaitGroup
	const rounds = 200
	wg.Go(func() {
		for j := range rounds {
			if err := s.UpdateSealed(ctx, "tokens", fmt.Appendf(nil, "tokens-%d", j)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for j := range rounds {
			if err := s.Touch(ctx, "tokens", now.Add(time.Duration(j)*time.Millisecond), now.Add(2*time.Hour)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	got, err := s.Get(ctx, "tokens")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("tokens-%d", rounds-1); string(got.Sealed) != want {
		t.Errorf("Sealed = %q, want %q: a Touch undid a token update", got.Sealed, want)
	}
}

// TestUnreadableRecord checks that a value the store cannot read is an
// error, not a missing session, and is left as it is.
func TestUnreadableRecord(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	prefix := newPrefix()
	s := redisstore.New(client, redisstore.WithPrefix(prefix))
	ctx := t.Context()
	for name, value := range map[string]string{
		"short":       "\x01abc",
		"new version": "\x02" + strings.Repeat("\x00", 60),
		"bad lengths": "\x01" + strings.Repeat("\x00", 4) + strings.Repeat("\xff", 44),
	} {
		t.Run(name, func(t *testing.T) {
			key := recordKey(prefix, name)
			if err := client.Set(ctx, key, value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, name); err == nil || errors.Is(err, session.ErrNotFound) {
				t.Errorf("Get: %v, want an error other than ErrNotFound", err)
			}
			if err := s.UpdateSealed(ctx, name, []byte("x")); err == nil || errors.Is(err, session.ErrNotFound) {
				t.Errorf("UpdateSealed: %v, want an error other than ErrNotFound", err)
			}
			if name != "bad lengths" { // its fixed header says: expired
				if err := s.Touch(ctx, name, time.Now(), time.Now().Add(time.Hour)); err == nil {
					t.Errorf("Touch: nil, want an error")
				}
			}
			if got, err := client.Get(ctx, key).Result(); err != nil || got != value {
				t.Errorf("the value became %q, %v", got, err)
			}
		})
	}
}

func TestLeaserSuite(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	sessiontest.RunLeaser(t, func(t *testing.T) session.Leaser {
		return redisstore.New(client, redisstore.WithPrefix(newPrefix()))
	})
}

func TestLease(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	newStore := func() *redisstore.Store { return redisstore.New(client, redisstore.WithPrefix(newPrefix())) }
	ctx := t.Context()
	mustLease := func(t *testing.T, s *redisstore.Store, name string, ttl time.Duration) session.Lease {
		t.Helper()
		l, err := s.Lease(ctx, name, ttl)
		if err != nil {
			t.Fatalf("Lease(%q): %v", name, err)
		}
		return l
	}
	wantHeld := func(t *testing.T, s *redisstore.Store, name string) {
		t.Helper()
		if l, err := s.Lease(ctx, name, time.Minute); !errors.Is(err, session.ErrLeaseHeld) {
			t.Fatalf("Lease(%q) = %v, %v; want ErrLeaseHeld", name, l, err)
		}
	}

	t.Run("two holders", func(t *testing.T) {
		t.Parallel()
		// Two replicas: two stores on the same keys.
		prefix := newPrefix()
		one := redisstore.New(client, redisstore.WithPrefix(prefix))
		two := redisstore.New(client, redisstore.WithPrefix(prefix))
		l := mustLease(t, one, "refresh:a", time.Minute)
		wantHeld(t, two, "refresh:a")
		wantHeld(t, one, "refresh:a")
		mustLease(t, two, "refresh:b", time.Minute) // another name is free
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		mustLease(t, two, "refresh:a", time.Minute)
		wantHeld(t, one, "refresh:a")
	})
	t.Run("one of many", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		var won atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				_, err := s.Lease(ctx, "contended", time.Minute)
				switch {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, session.ErrLeaseHeld):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Errorf("%d holders, want 1", won.Load())
		}
	})
	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		mustLease(t, s, "x", 100*time.Millisecond)
		wantHeld(t, s, "x")
		time.Sleep(150 * time.Millisecond)
		mustLease(t, s, "x", time.Minute) // the holder died: taken within its TTL
	})
	t.Run("renew keeps it", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		l := mustLease(t, s, "x", 200*time.Millisecond)
		for range 4 {
			time.Sleep(100 * time.Millisecond)
			if err := l.Renew(ctx); err != nil {
				t.Fatal(err)
			}
		}
		wantHeld(t, s, "x") // 400ms after taking a 200ms lease
	})
	t.Run("renew after loss fails", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		first := mustLease(t, s, "x", 100*time.Millisecond)
		time.Sleep(150 * time.Millisecond)
		second := mustLease(t, s, "x", time.Minute)
		if err := first.Renew(ctx); !errors.Is(err, session.ErrLeaseHeld) {
			t.Errorf("Renew of a lost lease: %v, want ErrLeaseHeld", err)
		}
		// Release by a holder that lost it does nothing.
		if err := first.Release(ctx); err != nil {
			t.Fatal(err)
		}
		wantHeld(t, s, "x")
		if err := second.Renew(ctx); err != nil {
			t.Errorf("Renew by the holder: %v", err)
		}
	})
	t.Run("renew after expiry fails", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		l := mustLease(t, s, "x", 100*time.Millisecond)
		time.Sleep(150 * time.Millisecond)
		// Nobody took it, but someone may have taken, refreshed and
		// released it meanwhile.
		if err := l.Renew(ctx); !errors.Is(err, session.ErrLeaseHeld) {
			t.Errorf("Renew of an expired lease: %v, want ErrLeaseHeld", err)
		}
	})
	t.Run("release by a non-holder", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		l := mustLease(t, s, "x", time.Minute)
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		other := mustLease(t, s, "x", time.Minute)
		if err := l.Release(ctx); err != nil { // released already: not the holder
			t.Fatal(err)
		}
		wantHeld(t, s, "x")
		if err := other.Renew(ctx); err != nil {
			t.Errorf("the holder lost its lease to another's Release: %v", err)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		t.Parallel()
		s := newStore()
		if _, err := s.Lease(ctx, "x", 0); err == nil {
			t.Error("Lease with ttl 0: nil error")
		}
		mustLease(t, s, "x", 1500*time.Microsecond) // rounded up to 2ms
		time.Sleep(10 * time.Millisecond)
		mustLease(t, s, "x", time.Minute)
	})
}

// TestOutage stops Redis, then pauses it: every method fails, within the
// client's timeouts, with an error that is not ErrNotFound (or
// ErrLeaseHeld), and changes nothing. When Redis is back the same data is
// there and everything works without a new client.
func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, redisstore.ClientConfig{URL: srv.URL()})
	s := redisstore.New(client, redisstore.WithPrefix(newPrefix()))
	now := time.Now()
	rec := liveRecord(now, "alice", "sid-1")
	mustPut(t, s, "k", rec)
	held, err := s.Lease(context.Background(), "refresh:k", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Two tries (one retry), each bounded by a dial, a write and a read,
	// and the retry's backoff (at most a second).
	const bound = 2*3*testTimeout + time.Second

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Get missing", func(ctx context.Context) error { _, err := s.Get(ctx, "missing"); return err }},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, "k", liveRecord(now, "mallory", "sid-9")) }},
		{"Put tombstone", func(ctx context.Context) error {
			return s.Put(ctx, "k", session.Record{Expires: now.Add(time.Hour), Ended: session.ReasonSignedOut})
		}},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, "k", now, now.Add(24*time.Hour)) }},
		{"UpdateSealed", func(ctx context.Context) error { return s.UpdateSealed(ctx, "k", []byte("lost")) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "k") }},
		{"Find", func(ctx context.Context) error { _, err := s.Find(ctx, "alice", ""); return err }},
		{"Ping", s.Ping},
		{"Lease", func(ctx context.Context) error { _, err := s.Lease(ctx, "refresh:other", time.Minute); return err }},
		{"Renew", held.Renew},
		{"Release", held.Release},
	}
	down := func(t *testing.T) {
		for _, c := range calls {
			start := time.Now()
			err := c.call(context.Background())
			took := time.Since(start)
			switch {
			case err == nil:
				t.Errorf("%s: nil error while Redis is down", c.name)
			case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrLeaseHeld):
				t.Errorf("%s: %v; Redis being down must not look like an answer", c.name, err)
			}
			if took > bound {
				t.Errorf("%s took %v, want at most %v", c.name, took, bound)
			}
			t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
		}
	}
	back := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.Ping(context.Background()) != nil {
			if time.Now().After(deadline) {
				t.Fatal("the store did not recover within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		ctx := context.Background()
		got, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatalf("Get after the outage: %v", err)
		}
		if got.Subject != rec.Subject || !bytes.Equal(got.Sealed, rec.Sealed) || !got.Expires.Equal(rec.Expires) {
			t.Errorf("record after the outage: %+v, want %+v", got, rec)
		}
		if keys, err := s.Find(ctx, "alice", ""); err != nil || !slices.Equal(keys, []string{"k"}) {
			t.Errorf("Find after the outage = %q, %v", keys, err)
		}
		if err := held.Renew(ctx); err != nil {
			t.Errorf("the lease was lost in the outage: %v", err)
		}
		if err := s.UpdateSealed(ctx, "k", rec.Sealed); err != nil {
			t.Errorf("UpdateSealed after the outage: %v", err)
		}
	}

	t.Run("stopped", func(t *testing.T) {
		srv.Stop()
		down(t)
		srv.Restart()
		back(t)
	})
	t.Run("paused", func(t *testing.T) {
		srv.Pause()
		down(t)
		srv.Resume()
		back(t)
	})
	t.Run("deadline", func(t *testing.T) {
		// The caller's deadline bounds a call too, when it is the shorter.
		srv.Pause()
		defer srv.Resume()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get: %v", err)
		}
		if took := time.Since(start); took > testTimeout {
			t.Errorf("Get took %v with a 50ms deadline", took)
		}
	})
}

// TestAuth checks that the password and ACL user of the URL, and the
// password that replaces the URL's, reach Redis.
func TestAuth(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithArgs(
		"--requirepass", "default-secret",
		"--user", "custodian", "on", ">acl-secret", "~*", "&*", "+@all",
	))
	host := srv.Addr()
	tests := []struct {
		name   string
		config redisstore.ClientConfig
		ok     bool
	}{
		{"no password", redisstore.ClientConfig{URL: "redis://" + host}, false},
		{"password in the URL", redisstore.ClientConfig{URL: "redis://:default-secret@" + host}, true},
		{"password replacing the URL's", redisstore.ClientConfig{URL: "redis://:wrong@" + host, Password: "default-secret"}, true},
		{"ACL user", redisstore.ClientConfig{URL: "redis://custodian:acl-secret@" + host}, true},
		{"ACL user, password from the environment", redisstore.ClientConfig{URL: "redis://custodian@" + host, Password: "acl-secret"}, true},
		{"ACL user, wrong password", redisstore.ClientConfig{URL: "redis://custodian:default-secret@" + host}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := redisstore.New(newClient(t, tt.config))
			err := s.Ping(t.Context())
			if (err == nil) != tt.ok {
				t.Errorf("Ping: %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
}

// TestTLS checks rediss:// against a server that speaks only TLS: its
// certificate is verified.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithTLS())
	tests := []struct {
		name   string
		config redisstore.ClientConfig
		ok     bool
	}{
		{"trusted", redisstore.ClientConfig{URL: srv.URL(), TLS: srv.TLSConfig()}, true},
		{"untrusted certificate", redisstore.ClientConfig{URL: srv.URL()}, false},
		{"plain text", redisstore.ClientConfig{URL: "redis://" + srv.Addr()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := redisstore.New(newClient(t, tt.config), redisstore.WithPrefix(newPrefix()))
			err := s.Put(t.Context(), "k", liveRecord(time.Now(), "alice", "sid"))
			if (err == nil) != tt.ok {
				t.Fatalf("Put: %v, want ok %v", err, tt.ok)
			}
			if tt.ok {
				if got, err := s.Get(t.Context(), "k"); err != nil || got.Subject != "alice" {
					t.Errorf("Get = %+v, %v", got, err)
				}
			}
		})
	}
}

// TestSentinel runs the suite through a Redis Sentinel that monitors the
// server.
func TestSentinel(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	sentinel := redistest.Start(t, redistest.WithSentinel(master, "sessions"))
	client := newClient(t, redisstore.ClientConfig{URL: sentinel.URL(), MasterName: "sessions"})
	sessiontest.Run(t, suite(client))
	t.Run("on the master", func(t *testing.T) {
		prefix := newPrefix()
		s := redisstore.New(client, redisstore.WithPrefix(prefix))
		mustPut(t, s, "k", liveRecord(time.Now(), "alice", "sid"))
		if n, err := master.Do("EXISTS", recordKey(prefix, "k")); err != nil || n != "1" {
			t.Errorf("EXISTS on the master = %s, %v; want 1", n, err)
		}
	})
}
