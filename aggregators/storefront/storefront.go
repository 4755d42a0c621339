// Package storefront is the browser-facing API of the Acme store demo: it
// calls the store's backends with the caller's held tokens and returns only
// the public messages of acme.storefront.v1, never a backend's internal
// fields or error texts.
package storefront

import (
	"crypto/rand"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/aggregators/pagetoken"
	"github.com/custodian-bff/custodian/server/keyring"
)

// Option configures the storefront services.
type Option interface {
	apply(*options)
}

type options struct {
	logger          *slog.Logger
	imageBase       string
	optionalTimeout time.Duration
	pageTokens      *pagetoken.Sealer
	meters          metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger for backend failures. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithImageBaseURL sets the public origin that product image paths are
// resolved against. Default "https://images.acme.example".
func WithImageBaseURL(base string) Option {
	return optionFunc(func(o *options) { o.imageBase = strings.TrimRight(base, "/") })
}

// WithOptionalTimeout bounds each optional part of an answer (loyalty,
// recent orders, product details), so one slow backend costs its section,
// not the page. Default 1s; required parts wait for their backend's own
// timeout.
func WithOptionalTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.optionalTimeout = d })
}

// WithPageTokens sets the sealer of the page tokens the services hand to
// browsers in place of the backends' own; give the gateway's
// (custodian's Gateway.PageTokens), so that its replicas and restarts
// accept them. Default: a sealer on a random key of the service's own, so
// tokens are sealed all the same but last only as long as the process.
func WithPageTokens(sealer *pagetoken.Sealer) Option {
	return optionFunc(func(o *options) { o.pageTokens = sealer })
}

// WithMeterProvider sets where the catalog's cache lookups are counted
// (custodian.cache.lookups, cache catalog_products or catalog_pages). Only
// NewCatalog reads it. Default: not counted.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meters = mp })
}

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), imageBase: "https://images.acme.example", optionalTimeout: time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.pageTokens == nil {
		o.pageTokens = ownSealer()
	}
	return o
}

// ownSealer returns a page-token sealer on a new random key.
func ownSealer() *pagetoken.Sealer {
	key := make([]byte, keyring.KeySize)
	// crypto/rand.Read never fails on supported platforms, and New fails
	// only for keys of the wrong size.
	_, _ = rand.Read(key)
	sealer, _ := pagetoken.New([][]byte{key})
	return sealer
}
