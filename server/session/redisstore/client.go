package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig says how to reach Redis: a single server, Sentinel or
// Cluster. It is what Custodian's configuration holds (session.redis_*).
type ClientConfig struct {
	// URL is redis://[user[:password]@]host[:port][/db], or rediss:// for
	// TLS (verified against the system's roots and each server's host
	// name). The port defaults to 6379 and the database to 0. The user and
	// password are an ACL user's (or only a password, for requirepass).
	// No query parameters: the fields below are the only settings.
	URL string
	// Password, when not empty, replaces the URL's password.
	Password string
	// Addrs are more host:port addresses, of the same kind as the URL's:
	// Cluster nodes to discover the cluster from, or more Sentinels.
	// Allowed only with Cluster or MasterName.
	Addrs []string
	// MasterName, when set, is the name of a Sentinel-monitored master:
	// the URL's host and Addrs are then Sentinels (reached without a
	// password), and the user and password are the master's.
	MasterName string
	// Cluster says the URL's host and Addrs are nodes of a Redis Cluster.
	// The database must be 0.
	Cluster bool
	// PoolSize is the most connections to one server. 0 means
	// DefaultPoolSize.
	PoolSize int
	// DialTimeout, ReadTimeout and WriteTimeout bound connecting, waiting
	// for a reply and sending a command. 0 means DefaultDialTimeout,
	// DefaultReadTimeout and DefaultWriteTimeout.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// TLS, when not nil, is the TLS configuration of a rediss:// URL, such
	// as one trusting a private CA. Default: the system's roots, TLS 1.2 or
	// later.
	TLS *tls.Config
}

// Retries of a failed command and dial attempts: a command is tried twice
// (the first try may meet a connection Redis closed), each time with one
// dial, so that a call fails fast while Redis is down.
const (
	maxRetries    = 1
	dialerRetries = 1
)

// NewClient returns a client for c. It does not connect: connections are
// made as needed, and a Redis that is down at start is no error. Close the
// client when done.
func NewClient(c ClientConfig) (redis.UniversalClient, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opts), nil
}

// Options returns the go-redis options NewClient uses for c.
func (c ClientConfig) Options() (*redis.UniversalOptions, error) {
	// Errors never quote the URL: it may hold a password.
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return nil, errors.New("redisstore: the Redis URL is not a valid URL")
	case u.Scheme != "redis" && u.Scheme != "rediss" || u.Opaque != "" || u.Hostname() == "":
		return nil, errors.New("redisstore: the Redis URL must be redis:// or rediss:// with a host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("redisstore: the Redis URL must have no query or fragment")
	}
	db := 0
	if path := strings.TrimPrefix(u.Path, "/"); path != "" {
		if db, err = strconv.Atoi(path); err != nil || db < 0 {
			return nil, errors.New("redisstore: the Redis URL's path must be a database number, such as /0")
		}
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	addrs := append([]string{net.JoinHostPort(u.Hostname(), port)}, c.Addrs...)
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("redisstore: address %q is not host:port", a)
		}
	}
	switch {
	case c.Cluster && c.MasterName != "":
		return nil, errors.New("redisstore: Cluster and a Sentinel master name exclude each other")
	case c.Cluster && db != 0:
		return nil, errors.New("redisstore: a Redis Cluster has only database 0")
	case !c.Cluster && c.MasterName == "" && len(c.Addrs) > 0:
		return nil, errors.New("redisstore: more addresses need Cluster or a Sentinel master name")
	case c.PoolSize < 0 || c.DialTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0:
		return nil, errors.New("redisstore: pool size and timeouts must not be negative")
	}
	opts := &redis.UniversalOptions{
		Addrs:                 addrs,
		ClientName:            "custodian",
		DB:                    db,
		MasterName:            c.MasterName,
		IsClusterMode:         c.Cluster,
		Username:              u.User.Username(),
		MaxRetries:            maxRetries,
		DialerRetries:         dialerRetries,
		PoolSize:              orDefault(c.PoolSize, DefaultPoolSize),
		DialTimeout:           orDefault(c.DialTimeout, DefaultDialTimeout),
		ReadTimeout:           orDefault(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:          orDefault(c.WriteTimeout, DefaultWriteTimeout),
		ContextTimeoutEnabled: true, // a call's deadline bounds its Redis commands too
	}
	opts.Password, _ = u.User.Password()
	if c.Password != "" {
		opts.Password = c.Password
	}
	if u.Scheme == "rediss" {
		// No ServerName: crypto/tls takes each connection's host, which is
		// right for every node of a Cluster or Sentinel setup.
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLS != nil {
			opts.TLSConfig = c.TLS.Clone()
		}
	}
	return opts, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
