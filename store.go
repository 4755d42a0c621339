package custodian

import (
	"fmt"
	"time"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// newStore returns the session store the configuration names.
func newStore(cfg *config.Config, now func() time.Time) (session.Store, error) {
	switch cfg.Session.Store {
	case config.StoreMemory, "":
		store, err := session.NewMemoryStore(cfg.Session.MaxSessions, now)
		if err != nil {
			return nil, fmt.Errorf("custodian: %w", err)
		}
		return store, nil
	default:
		return nil, fmt.Errorf("custodian: session.store %q is not available in this version", cfg.Session.Store)
	}
}
