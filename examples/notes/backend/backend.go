// Package backend is the notes backend the example gateway calls: a stand-in
// for a team's real service. It answers with its whole record of a note,
// internal fields included, as backends do; keeping those fields from the
// browser is the gateway's job.
package backend

import (
	"context"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	backendv1 "github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1/backendv1connect"
)

// Values of the internal fields of every note. The gateway must never send
// them to a browser; tests look for them in its responses.
const (
	OwnerID          = "owner-7d1e-internal"
	StorageShard     = "shard-eu-west-3"
	ModerationFlag   = "moderation-flag-spam-score-0"
	InternalRevision = int64(914253678)
)

// Service is the notes backend.
type Service struct {
	notes []*backendv1.Note
}

// New returns a backend holding two notes, "n1" and "n2".
func New() *Service {
	updated := timestamppb.New(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
	note := func(id, title, body string) *backendv1.Note {
		return &backendv1.Note{
			Id:               id,
			Title:            title,
			Body:             body,
			UpdateTime:       updated,
			OwnerId:          OwnerID,
			StorageShard:     StorageShard,
			ModerationFlags:  []string{ModerationFlag},
			InternalRevision: InternalRevision,
		}
	}
	return &Service{notes: []*backendv1.Note{
		note("n1", "Groceries", "Milk, eggs, flour."),
		note("n2", "Ideas", "A gateway that keeps tokens out of the browser."),
	}}
}

// Handler serves the backend's NoteService over Connect, gRPC and gRPC-Web.
func (s *Service) Handler() http.Handler {
	srv := connect.NewServer(requireBearer)
	backendv1connect.RegisterNoteServiceHandler(srv, s)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	return mux
}

// GetNote returns the note with the requested id.
func (s *Service) GetNote(_ context.Context, req *backendv1.GetNoteRequest) (*backendv1.GetNoteResponse, error) {
	for _, n := range s.notes {
		if n.GetId() == req.GetId() {
			return &backendv1.GetNoteResponse{Note: proto.CloneOf(n)}, nil
		}
	}
	// A backend's message may name its internals: the gateway must log it,
	// not forward it.
	return nil, connect.Errorf(connect.CodeNotFound, "note %q not found on %s", req.GetId(), StorageShard)
}

// ListNotes returns every note.
func (s *Service) ListNotes(context.Context, *backendv1.ListNotesRequest) (*backendv1.ListNotesResponse, error) {
	res := &backendv1.ListNotesResponse{}
	for _, n := range s.notes {
		res.Notes = append(res.Notes, proto.CloneOf(n))
	}
	return res, nil
}

// requireBearer refuses calls without a bearer token. A real backend also
// verifies the token (signature, issuer, audience, expiry) and takes the
// caller's identity from it.
func requireBearer(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		info, ok := connect.CallInfoForServerContext(ctx)
		if !ok {
			return connect.NewError(connect.CodeInternal, "no call info")
		}
		token, ok := strings.CutPrefix(info.RequestHeader().Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return connect.NewError(connect.CodeUnauthenticated, "bearer token required")
		}
		return next(ctx, spec, stream)
	}
}
