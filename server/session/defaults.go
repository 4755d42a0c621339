package session

import "time"

// Defaults of the session manager, also the configuration's defaults.
const (
	// DefaultCookieName is the session cookie's name.
	DefaultCookieName = "__Host-custodian"
	// DefaultIdleTimeout ends a session unused this long.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultAbsoluteTimeout ends a session this long after login.
	DefaultAbsoluteTimeout = 12 * time.Hour
	// DefaultRefreshSkew refreshes access tokens this long before they
	// expire.
	DefaultRefreshSkew = time.Minute
	// DefaultMaxSessions is the memory store's capacity in a configuration
	// that names none.
	DefaultMaxSessions = 100000
)
