package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discovery fetches the provider's OpenID configuration on first use and
// keeps it; a failed fetch is retried by the next caller, so the gateway can
// start while its provider is still coming up.
type discovery struct {
	issuer string
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func (d *discovery) get(ctx context.Context) (*oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider != nil {
		return d.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, d.client), d.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", d.issuer, err)
	}
	d.provider = p
	return p, nil
}

func (d *discovery) tokenURL(ctx context.Context) (string, error) {
	p, err := d.get(ctx)
	if err != nil {
		return "", err
	}
	return p.Endpoint().TokenURL, nil
}
