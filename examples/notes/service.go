package main

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	backendv1 "github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1/backendv1connect"
	webv1 "github.com/custodian-bff/custodian/examples/notes/gen/notes/web/v1"
	"github.com/custodian-bff/custodian/server/session"
)

// notesService is the browser-facing notes.web.v1.NotesService. It calls the
// notes backend with the signed-in user's token and answers with the public
// view of each note, built field by field.
type notesService struct {
	backend backendv1connect.NoteServiceClient
	logger  *slog.Logger
}

func (s *notesService) GetNote(ctx context.Context, req *webv1.GetNoteRequest) (*webv1.GetNoteResponse, error) {
	// Without a session the backend client could only fail; Require says
	// why (never signed in, expired, signed out) and where to sign in.
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	var invalid fanout.FieldErrors
	if req.GetId() == "" {
		invalid.Add("id", "must not be empty")
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	res, err := s.backend.GetNote(ctx, &backendv1.GetNoteRequest{Id: req.GetId()})
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "notes", err)
	}
	return &webv1.GetNoteResponse{Note: publicNote(res.GetNote())}, nil
}

func (s *notesService) ListNotes(ctx context.Context, _ *webv1.ListNotesRequest) (*webv1.ListNotesResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	res, err := s.backend.ListNotes(ctx, &backendv1.ListNotesRequest{})
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "notes", err)
	}
	notes := make([]*webv1.Note, 0, len(res.GetNotes()))
	for _, n := range res.GetNotes() {
		notes = append(notes, publicNote(n))
	}
	return &webv1.ListNotesResponse{Notes: notes}, nil
}

// publicNote copies what a browser may see, field by field. Never unmarshal
// a backend's bytes into a public type or reuse its messages: they would
// carry the internal fields along as unknown fields.
func publicNote(n *backendv1.Note) *webv1.Note {
	var updated *timestamppb.Timestamp
	if t := n.GetUpdateTime(); t != nil {
		updated = &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
	}
	return &webv1.Note{
		Id:         n.GetId(),
		Title:      n.GetTitle(),
		Body:       n.GetBody(),
		UpdateTime: updated,
	}
}
