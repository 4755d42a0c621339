package gatewaytest

import (
	"context"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// profileProxyBackend is the backend WithProfileService configures.
const profileProxyBackend = "profile-proxy"

// WithProfileService serves acme.profiles.v1.ProfileService on a demo
// gateway, forwarding GetProfile to the demo profiles backend with the
// user's token, through a backend of its own (Connect, user token, 30s
// timeout) that it adds to the configuration.
func WithProfileService() Option {
	return func(c *envConfig) {
		c.configure = append(c.configure, func(cfg *config.Config) {
			for _, b := range cfg.Backends {
				if b.Name == "profiles" {
					cfg.Backends = append(cfg.Backends, config.Backend{
						Name:     profileProxyBackend,
						URL:      b.URL,
						Protocol: config.ProtocolConnect,
						Token:    config.TokenUser,
						Audience: b.Audience,
						Timeout:  30 * time.Second,
					})
					return
				}
			}
		})
		c.mounts = append(c.mounts, func(_ *Env, gw *custodian.Gateway) error {
			client, err := custodian.Client(gw, profileProxyBackend, profilesv1connect.NewProfileServiceClient)
			if err != nil {
				return err
			}
			return gw.Mount(func(s *connect.Server) {
				profilesv1connect.RegisterProfileServiceHandler(s, &profileProxy{client: client})
			})
		})
	}
}

// profileProxy is a browser-facing ProfileService that calls the backend
// with the session's access token, as an aggregator would.
type profileProxy struct {
	profilesv1connect.UnimplementedProfileServiceHandler
	client profilesv1connect.ProfileServiceClient
}

func (p *profileProxy) GetProfile(ctx context.Context, req *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	// Without a session the backend client could only say "sign-in
	// required"; Require gives the browser the reason.
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	return p.client.GetProfile(ctx, req)
}
