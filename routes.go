package custodian

import (
	"fmt"
	"log/slog"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/aggregators/routes"
	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/config"
)

// mountRoutes serves cfg.Routes, the config-only routes (docs/routes.md):
// it loads the descriptor set, checks every route against it and refuses
// to start on the first route that cannot be served safely, naming it.
func mountRoutes(srv *server.Server, cfg *config.Config, logger *slog.Logger, backends map[string]*clients.Backend, newBackend func(config.Backend) (*clients.Backend, error)) error {
	if len(cfg.Routes.Methods) == 0 {
		return nil
	}
	files, err := routes.LoadFiles(cfg.Routes.Descriptors)
	if err != nil {
		return fmt.Errorf("custodian: routes.descriptors: %w", err)
	}
	configured := make(map[string]config.Backend, len(cfg.Backends))
	for _, b := range cfg.Backends {
		configured[b.Name] = b
	}
	methods := make([]connect.Method, 0, len(cfg.Routes.Methods))
	for i, rc := range cfg.Routes.Methods {
		where := fmt.Sprintf("routes.methods[%d] (%s)", i, rc.Public)
		public, err := routes.FindMethod(files, rc.Public)
		if err != nil {
			return fmt.Errorf("custodian: %s: public: %w", where, err)
		}
		backendMethod, err := routes.FindMethod(files, rc.Method)
		if err != nil {
			return fmt.Errorf("custodian: %s: method: %w", where, err)
		}
		backend := backends[rc.Backend]
		if b := configured[rc.Backend]; rc.Token != "" && rc.Token != b.Token {
			b.Token = rc.Token
			if b.Token == config.TokenNone {
				b.Audience = ""
			}
			if backend, err = newBackend(b); err != nil {
				return fmt.Errorf("custodian: %s: token %s: %w", where, rc.Token, err)
			}
		}
		route, err := routes.New(routes.Config{
			Public:            public,
			Backend:           backendMethod,
			Client:            backend.Client(),
			Anonymous:         rc.Anonymous,
			AllowDynamicTypes: rc.AllowDynamicTypes,
			Bind:              rc.Bind,
			Logger:            logger,
		})
		if err != nil {
			return fmt.Errorf("custodian: %s: %w", where, err)
		}
		methods = append(methods, route.Method())
	}
	err = srv.Mount(server.Service{Register: func(s *connect.Server) {
		for _, m := range methods {
			s.Register(m)
		}
	}})
	if err != nil {
		return fmt.Errorf("custodian: routes: %w", err)
	}
	return nil
}
