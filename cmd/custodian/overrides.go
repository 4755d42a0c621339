package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/custodian-bff/custodian/server/config"
)

// overrides are the flags that replace configuration values, so that the
// demo (which has no file) can sit behind a Next.js app or another origin.
type overrides struct {
	publicURL           string
	allowedOrigins      list
	trustedProxies      list
	accessTokenLifetime time.Duration
	adminAddr           string
	pprof               bool
}

// apply sets the flags given on cfg and checks cfg again.
func (o overrides) apply(cfg *config.Config) error {
	if o.publicURL == "" && o.allowedOrigins == nil && o.trustedProxies == nil && o.adminAddr == "" && !o.pprof {
		return nil
	}
	if o.adminAddr != "" {
		cfg.Telemetry.Admin.Listen = o.adminAddr
	}
	if o.pprof {
		cfg.Telemetry.Admin.Pprof = true
	}
	if o.publicURL != "" {
		cfg.PublicURL = o.publicURL
	}
	if o.allowedOrigins != nil {
		cfg.CORS.AllowedOrigins = o.allowedOrigins
	}
	if o.trustedProxies != nil {
		cfg.Server.TrustedProxies = o.trustedProxies
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	return nil
}

// list is a comma-separated flag; an empty value sets an empty list.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	*l = []string{}
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}
