package routes_test

// The cost of a config-only route through a whole gateway, against the
// same call served by a hand-written aggregator: BenchmarkRoute and
// BenchmarkHandWritten send the same public call (routestest.web.v1
// TicketService/GetTicket, a 30-field ticket with nested messages, lists,
// maps, a oneof and well-known types) through every layer of a gateway
// (HTTP, CSRF guard, session, rate limits, edge), which calls the same
// in-process backend (routestest.backend.v1) with the user's token and
// account_id bound to the session's subject. The route decodes and builds
// dynamicpb messages from descriptors loaded at start; the hand-written
// handler uses the generated Go types of both schemas
// (testdata/gen/routestest) and copies fields by hand.
//
//	go test -run '^$' -bench 'Route$|HandWritten$' -benchmem ./aggregators/routes/

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custodian-bff/custodian"
	backendv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/backend/v1"
	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

var (
	benchPublic  = webv1.File_routestest_web_v1_tickets_proto.Services().Get(0).Methods().ByName("GetTicket")
	benchBackend = backendv1.File_routestest_backend_v1_tickets_proto.Services().Get(0).Methods().ByName("GetTicket")
)

// benchAnswer returns the backend's answer, a ticket with every public
// field set and internal fields at every level (the canary filler, without
// unknown fields: a backend on the same schema version), and the public
// answer both handlers must give.
func benchAnswer() (*backendv1.GetTicketResponse, *webv1.GetTicketResponse) {
	b, p := &backendv1.GetTicketResponse{}, &webv1.GetTicketResponse{}
	newFiller("bench").message(b.ProtoReflect(), p.ProtoReflect(), 0)
	return b, p
}

// benchDescriptors writes the descriptor set of the generated test
// schemas, which the route loads, and returns its path: built from the
// generated code, it cannot differ from the types the hand-written handler
// uses.
func benchDescriptors(tb testing.TB) string {
	tb.Helper()
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range []protoreflect.FileDescriptor{webv1.File_routestest_web_v1_tickets_proto, backendv1.File_routestest_backend_v1_tickets_proto} {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	raw, err := proto.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "routestest.binpb")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// startBenchBackend serves routestest.backend.v1.TicketService/GetTicket,
// answering every call that names an account with answer.
func startBenchBackend(tb testing.TB, answer *backendv1.GetTicketResponse) string {
	tb.Helper()
	srv := connect.NewServer()
	srv.Register(connect.Method{Spec: specOf(benchBackend), Handler: func(_ context.Context, _ connect.Spec, stream connect.ServerStream) error {
		var req backendv1.GetTicketRequest
		if err := stream.Receive(&req); err != nil {
			return err
		}
		if req.GetAccountId() == "" || req.GetTicketId() == "" {
			return connect.NewError(connect.CodeInvalidArgument, "account_id and ticket_id are required")
		}
		return stream.Send(answer)
	}})
	return serveH2C(tb, srv)
}

// benchEnv starts a gateway whose backend "tickets" is the bench backend,
// serving GetTicket from a route (route) or from the hand-written handler,
// and returns a client of a browser signed in as user, over p.
func benchEnv(tb testing.TB, route bool, p gt.RPC) *connect.Client {
	tb.Helper()
	answer, _ := benchAnswer()
	url := startBenchBackend(tb, answer)
	opts := []gt.Option{gt.WithConfig(func(c *config.Config) {
		c.Backends = append(c.Backends, config.Backend{Name: "tickets", URL: url, Protocol: config.ProtocolConnect, Token: config.TokenUser, Timeout: 10 * time.Second})
	})}
	if route {
		descriptors := benchDescriptors(tb)
		opts = append(opts, gt.WithConfig(func(c *config.Config) {
			c.Routes = config.Routes{Descriptors: descriptors, Methods: []config.Route{{
				Public:  string(benchPublic.Parent().FullName()) + "/GetTicket",
				Backend: "tickets",
				Method:  string(benchBackend.Parent().FullName()) + "/GetTicket",
				Bind:    map[string]string{"account_id": config.ClaimSubject},
			}}}
		}))
	} else {
		opts = append(opts, gt.WithMount(func(_ *gt.Env, gw *custodian.Gateway) error {
			backend, err := custodian.Client(gw, "tickets", func(c *connect.Client) *connect.Client { return c })
			if err != nil {
				return err
			}
			return gw.Mount(func(s *connect.Server) { s.Register(handWrittenGetTicket(backend)) })
		}))
	}
	e := gt.NewDemoEnv(tb, opts...)
	return e.SignedIn(tb, user).Client(p)
}

// handWrittenGetTicket is GetTicket as an aggregator written in Go serves
// it: the session's subject as account_id, a call with the generated
// backend client types, and a public answer copied field by field.
func handWrittenGetTicket(backend *connect.Client) connect.Method {
	backendSpec := specOf(benchBackend)
	return connect.Method{Spec: specOf(benchPublic), Handler: func(ctx context.Context, _ connect.Spec, stream connect.ServerStream) error {
		s, err := session.Require(ctx)
		if err != nil {
			return err
		}
		var req webv1.GetTicketRequest
		if err := stream.Receive(&req); err != nil {
			return err
		}
		breq := &backendv1.GetTicketRequest{AccountId: s.User.Subject, TicketId: req.GetTicketId()}
		if m := req.GetReadMask(); m != nil {
			breq.ReadMask = &fieldmaskpb.FieldMask{Paths: m.GetPaths()}
		}
		var res backendv1.GetTicketResponse
		if err := backend.CallUnary(ctx, backendSpec, breq, &res); err != nil {
			return err
		}
		return stream.Send(&webv1.GetTicketResponse{Ticket: byHandTicket(res.GetTicket())})
	}}
}

func byHandTicket(t *backendv1.Ticket) *webv1.Ticket {
	if t == nil {
		return nil
	}
	p := &webv1.Ticket{
		Id:                  t.GetId(),
		Title:               t.GetTitle(),
		Description:         t.GetDescription(),
		Status:              byHandStatus(t.GetStatus()),
		Priority:            byHandPriority(t.GetPriority()),
		CreateTime:          byHandTimestamp(t.GetCreateTime()),
		UpdateTime:          byHandTimestamp(t.GetUpdateTime()),
		TimeToFirstResponse: byHandDuration(t.GetTimeToFirstResponse()),
		Reporter:            byHandUser(t.GetReporter()),
		Assignee:            byHandUser(t.GetAssignee()),
		Comments:            byHandComments(t.GetComments()),
		Tags:                t.GetTags(),
		Labels:              t.GetLabels(),
		StoryPoints:         t.StoryPoints,
		Archived:            t.Archived,
		ViewCount:           t.GetViewCount(),
		SlaHours:            t.GetSlaHours(),
		Satisfaction:        t.GetSatisfaction(),
		Etag:                t.GetEtag(),
		Revision:            t.GetRevision(),
		WatcherIds:          t.GetWatcherIds(),
		Checksum:            t.GetChecksum(),
		PriorityDelta:       t.GetPriorityDelta(),
	}
	if len(t.GetAttachments()) > 0 {
		p.Attachments = make(map[string]*webv1.Attachment, len(t.GetAttachments()))
		for k, a := range t.GetAttachments() {
			p.Attachments[k] = &webv1.Attachment{Name: a.GetName(), SizeBytes: a.GetSizeBytes(), ContentType: a.GetContentType()}
		}
	}
	if len(t.GetHistory()) > 0 {
		p.History = make([]webv1.Status, len(t.GetHistory()))
		for i, s := range t.GetHistory() {
			p.History[i] = byHandStatus(s)
		}
	}
	if r := t.GetExternalRef(); r != nil {
		p.ExternalRef = &wrapperspb.StringValue{Value: r.GetValue()}
	}
	if m := t.GetUpdatedFields(); m != nil {
		p.UpdatedFields = &fieldmaskpb.FieldMask{Paths: m.GetPaths()}
	}
	switch target := t.GetTarget().(type) {
	case *backendv1.Ticket_Project:
		p.Target = &webv1.Ticket_Project{Project: &webv1.Project{Id: target.Project.GetId(), Name: target.Project.GetName()}}
	case *backendv1.Ticket_Team:
		team := &webv1.Team{Id: target.Team.GetId(), Name: target.Team.GetName()}
		for _, u := range target.Team.GetMembers() {
			team.Members = append(team.Members, byHandUser(u))
		}
		p.Target = &webv1.Ticket_Team{Team: team}
	}
	if len(t.GetStepStatus()) > 0 {
		p.StepStatus = make(map[int32]webv1.Status, len(t.GetStepStatus()))
		for k, s := range t.GetStepStatus() {
			p.StepStatus[k] = byHandStatus(s)
		}
	}
	return p
}

func byHandStatus(s backendv1.Status) webv1.Status {
	if _, ok := webv1.Status_name[int32(s)]; ok {
		return webv1.Status(s)
	}
	return webv1.Status_STATUS_UNSPECIFIED
}

func byHandPriority(p backendv1.Priority) webv1.Priority {
	if _, ok := webv1.Priority_name[int32(p)]; ok {
		return webv1.Priority(p)
	}
	return webv1.Priority_PRIORITY_UNSPECIFIED
}

func byHandTimestamp(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}

func byHandDuration(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return &durationpb.Duration{Seconds: d.GetSeconds(), Nanos: d.GetNanos()}
}

func byHandUser(u *backendv1.User) *webv1.User {
	if u == nil {
		return nil
	}
	return &webv1.User{Id: u.GetId(), DisplayName: u.GetDisplayName(), AvatarUrl: u.GetAvatarUrl()}
}

func byHandComments(cs []*backendv1.Comment) []*webv1.Comment {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*webv1.Comment, len(cs))
	for i, c := range cs {
		out[i] = &webv1.Comment{Id: c.GetId(), Author: byHandUser(c.GetAuthor()), Body: c.GetBody(),
			CreateTime: byHandTimestamp(c.GetCreateTime()), Replies: byHandComments(c.GetReplies())}
	}
	return out
}

// benchProtocols are the protocols the benchmarks call with.
var benchProtocols = []gt.RPC{gt.RPCProtocols()[1], gt.RPCProtocols()[0]} // Connect binary, Connect JSON

// getTicket makes the benchmarks' call.
func getTicket(ctx context.Context, client *connect.Client) (*webv1.GetTicketResponse, error) {
	res := &webv1.GetTicketResponse{}
	err := client.CallUnary(ctx, specOf(benchPublic), &webv1.GetTicketRequest{TicketId: "T-1042"}, res)
	return res, err
}

// TestBenchmarkHandlers checks that the route and the hand-written handler
// of the benchmarks give the same, expected answer over each protocol.
func TestBenchmarkHandlers(t *testing.T) {
	t.Parallel()
	_, want := benchAnswer()
	if len(want.GetTicket().GetComments()) == 0 || want.GetTicket().GetTarget() == nil {
		t.Fatalf("the bench answer lacks comments or a target:\n%s", text(want))
	}
	for _, route := range []bool{true, false} {
		name := "hand-written"
		if route {
			name = "route"
		}
		for _, p := range benchProtocols {
			t.Run(name+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				got, err := getTicket(t.Context(), benchEnv(t, route, p))
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("answer:\n%s\nwant:\n%s", text(got), text(want))
				}
			})
		}
	}
}

// BenchmarkRoute is the config-only route.
func BenchmarkRoute(b *testing.B) { benchmarkGetTicket(b, true) }

// BenchmarkHandWritten is the hand-written aggregator.
func BenchmarkHandWritten(b *testing.B) { benchmarkGetTicket(b, false) }

func benchmarkGetTicket(b *testing.B, route bool) {
	raw, _ := benchAnswer()
	size := proto.Size(raw)
	for _, p := range benchProtocols {
		b.Run(p.Name, func(b *testing.B) {
			client := benchEnv(b, route, p)
			ctx := context.Background()
			if _, err := getTicket(ctx, client); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := gt.ProcessCPU()
			for b.Loop() {
				if _, err := getTicket(ctx, client); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time of the whole process (browser, gateway and backend)
			// per call: steadier than ns/op on a shared machine.
			b.ReportMetric(float64(gt.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(size), "backend-B")
		})
	}
}
