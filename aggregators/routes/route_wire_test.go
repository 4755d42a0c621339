package routes

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectinprocess"
	"google.golang.org/protobuf/types/dynamicpb"

	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// TestRouteAnswerBytes checks a route's unary answer path end to end over
// a Connect backend that sends the given bytes: a valid answer is copied
// as ToPublic copies it, and a malformed one is an internal error, logged
// with the decoder's reason and nothing of the backend's bytes sent on.
func TestRouteAnswerBytes(t *testing.T) {
	t.Parallel()
	public := webv1.File_routestest_web_v1_tickets_proto.Services().Get(0).Methods().ByName("GetTicket")
	backendMethod := backendv1.File_routestest_backend_v1_tickets_proto.Services().Get(0).Methods().ByName("GetTicket")
	answer := canaryBytes(t, nil)
	tests := []struct {
		name     string
		body     []byte
		wantCode connect.Code // 0: success
	}{
		{name: "valid answer", body: answer},
		{name: "truncated answer", body: answer[:len(answer)-1], wantCode: connect.CodeInternal},
		{name: "invalid UTF-8", body: ticketBytes(t, cat(ticketTag(t, "title", 2), []byte{1, 0xff})), wantCode: connect.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/proto")
				_, _ = w.Write(tt.body)
			}))
			t.Cleanup(backend.Close)
			var logs bytes.Buffer
			r, err := New(Config{
				Public:    public,
				Backend:   backendMethod,
				Client:    connect.NewClient(connecthttp.NewTransport(backend.Client(), backend.URL, connecthttp.WithCodecs(BackendCodec()))),
				Anonymous: true,
				Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := connect.NewServer()
			srv.Register(r.Method())
			client := connect.NewClient(connectinprocess.New(srv))
			got := dynamicpb.NewMessage(public.Output())
			err = client.CallUnary(context.Background(), spec(public), dynamicpb.NewMessage(public.Input()), got)
			if tt.wantCode != 0 {
				if connect.CodeOf(err) != tt.wantCode {
					t.Fatalf("got %v, want code %v", err, tt.wantCode)
				}
				if ce, ok := errors.AsType[*connect.Error](err); !ok || ce.Message() != "internal error" {
					t.Errorf("error %v, want the generic message", err)
				}
				if !strings.Contains(logs.String(), "backend answer is malformed") {
					t.Errorf("malformed answer not logged: %q", logs.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := dynamicpb.NewMessage(public.Output())
			responseCopier(t).ToPublic(want, decodeDynamic(t, backendResponse, tt.body))
			if diff := cmpDiff(want, got); diff != "" {
				t.Errorf("public answer (-want +got):\n%s", diff)
			}
		})
	}
}
