// Command notes is a team's own gateway built on Custodian: browsers sign in
// through it and call notes.web.v1.NotesService with a session cookie; the
// gateway calls the team's notes backend with the user's access token and
// answers with the public fields only.
//
//	go run . --config notes.yaml
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1/backendv1connect"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/web/v1/webv1connect"
	"github.com/custodian-bff/custodian/server/config"
)

func main() {
	configPath := flag.String("config", "notes.yaml", "configuration file")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*configPath, logger); err != nil {
		logger.Error("notes gateway stopped", "error", err)
		os.Exit(1)
	}
}

func run(configPath string, logger *slog.Logger) error {
	// Secrets (client secret, session keys) come from files the
	// configuration names or from CUSTODIAN_* environment variables.
	cfg, err := config.Load(configPath, os.Getenv)
	if err != nil {
		return err
	}
	gw, err := newGateway(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("serving", "listen", ln.Addr().String(), "public_url", cfg.PublicURL)
	return gw.Serve(ctx, ln)
}

// newGateway assembles the gateway: login and sessions from cfg, a client
// for the backend named "notes" in cfg, and the browser-facing NotesService
// behind the gateway's defences.
func newGateway(cfg *config.Config, logger *slog.Logger) (*custodian.Gateway, error) {
	gw, err := custodian.New(cfg, custodian.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	notes, err := custodian.Client(gw, "notes", backendv1connect.NewNoteServiceClient)
	if err != nil {
		return nil, err
	}
	svc := &notesService{backend: notes, logger: gw.Logger()}
	err = gw.Mount(func(s *connect.Server) {
		webv1connect.RegisterNotesServiceHandler(s, svc)
	})
	if err != nil {
		return nil, err
	}
	return gw, nil
}
