// Package storefront is the browser-facing API of the Acme store demo: it
// calls the store's backends with the caller's held tokens and returns only
// the public messages of acme.storefront.v1, never a backend's internal
// fields or error texts.
package storefront

import (
	"log/slog"
	"strings"
	"time"
)

// Option configures the storefront services.
type Option interface {
	apply(*options)
}

type options struct {
	logger          *slog.Logger
	imageBase       string
	optionalTimeout time.Duration
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

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), imageBase: "https://images.acme.example", optionalTimeout: time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}
