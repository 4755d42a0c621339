package custodian

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/redisstore"
)

// testConfig returns a valid configuration with store: redis on srv.
func testConfig(t *testing.T, srv *redistest.Server) *config.Config {
	t.Helper()
	cfg := &config.Config{
		PublicURL: "http://127.0.0.1:8080",
		OIDC:      config.OIDC{Issuer: "http://127.0.0.1:9/op", ClientID: "custodian", ClientSecret: "secret"},
		Session:   config.Session{Keys: [][]byte{make([]byte, 32)}, Store: config.StoreRedis, RedisURL: srv.URL()},
		Backends:  []config.Backend{{Name: "none", URL: "http://127.0.0.1:9", Token: config.TokenNone}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// custodianClients counts the connections of Custodian's Redis clients.
func custodianClients(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	list, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(list, " name=custodian ")
}

func TestNewStoreRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithPassword("from-the-environment"))
	cfg := testConfig(t, srv)
	cfg.Session.RedisPassword = "from-the-environment"
	store, closeStore, err := newStore(cfg, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := store.(*redisstore.Store); !ok {
		t.Fatalf("store is a %T, want a *redisstore.Store", store)
	}
	ctx := t.Context()
	rec := session.Record{Subject: "alice", Expires: time.Now().Add(time.Hour), Sealed: []byte("box")}
	if err := store.Put(ctx, "k", rec); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, "k"); err != nil || string(got.Sealed) != "box" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if n := custodianClients(t, srv); n == 0 {
		t.Fatal("no connection named custodian")
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for custodianClients(t, srv) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client's connections stay open after closing the store")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewStoreRedisErrors(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Session: config.Session{Store: config.StoreRedis, RedisURL: "redis://:hunter2@redis:6379/x"}}
	_, _, err := newStore(cfg, time.Now, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("newStore: %v; want an error that does not show the password", err)
	}
}

func TestRedisClientConfig(t *testing.T) {
	t.Parallel()
	s := config.Session{
		RedisURL:          "rediss://custodian:in-url@redis-1:6380",
		RedisPassword:     "from-env",
		RedisAddrs:        []string{"redis-2:6380"},
		RedisCluster:      true,
		RedisPoolSize:     7,
		RedisDialTimeout:  time.Second,
		RedisReadTimeout:  2 * time.Second,
		RedisWriteTimeout: 3 * time.Second,
	}
	opts, err := redisClientConfig(&s).Options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Username != "custodian" || opts.Password != "from-env" || !opts.IsClusterMode || opts.TLSConfig == nil ||
		strings.Join(opts.Addrs, ",") != "redis-1:6380,redis-2:6380" || opts.PoolSize != 7 ||
		opts.DialTimeout != time.Second || opts.ReadTimeout != 2*time.Second || opts.WriteTimeout != 3*time.Second {
		t.Errorf("options %+v", opts)
	}
}

// TestServeClosesStore checks that the Redis client the gateway made is
// closed when Serve returns.
func TestServeClosesStore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	g, err := New(testConfig(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, ln) }()
	// A call that loads a session opens a connection of the store's client.
	header := map[string][]string{"Cookie": {g.sessions.CookieName() + "=" + strings.Repeat("A", 43)}}
	if _, err := g.sessions.FromHeader(t.Context(), header); err == nil {
		t.Fatal("a session with an unknown id")
	}
	if n := custodianClients(t, srv); n == 0 {
		t.Fatal("no connection named custodian while serving")
	}
	cancel()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for custodianClients(t, srv) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the store's connections stay open after Serve returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
