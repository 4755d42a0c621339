package custodian

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/redisstore"
)

// newStore returns the session store the configuration names, and a
// function that closes what it opened (the Redis client), to call once the
// store is no longer used.
func newStore(cfg *config.Config, now func() time.Time, meters metric.MeterProvider) (session.Store, func() error, error) {
	switch cfg.Session.Store {
	case config.StoreMemory, "":
		store, err := session.NewMemoryStore(cfg.Session.MaxSessions, now)
		if err != nil {
			return nil, nil, fmt.Errorf("custodian: %w", err)
		}
		return store, func() error { return nil }, nil
	case config.StoreRedis:
		client, err := redisstore.NewClient(redisClientConfig(&cfg.Session))
		if err != nil {
			return nil, nil, fmt.Errorf("custodian: session store: %w", err)
		}
		redisstore.CountErrors(client, meters)
		return redisstore.New(client, redisstore.WithClock(now)), client.Close, nil
	default:
		return nil, nil, fmt.Errorf("custodian: session.store %q is not available in this version", cfg.Session.Store)
	}
}

// redisClientConfig returns the Redis client settings of s. Zero fields
// (a Config built in code without ApplyDefaults) take the store's
// defaults.
func redisClientConfig(s *config.Session) redisstore.ClientConfig {
	return redisstore.ClientConfig{
		URL:          s.RedisURL,
		Password:     s.RedisPassword,
		Addrs:        s.RedisAddrs,
		MasterName:   s.RedisMasterName,
		Cluster:      s.RedisCluster,
		PoolSize:     s.RedisPoolSize,
		DialTimeout:  s.RedisDialTimeout,
		ReadTimeout:  s.RedisReadTimeout,
		WriteTimeout: s.RedisWriteTimeout,
	}
}
