// Package routes_test proves that the Custodian binary, a YAML file and a
// descriptor set are a whole gateway, with no Go code of their own: it
// builds the descriptor set of the workspace (go tool buf build), the
// binaries cmd/custodian and cmd/custodian-demo (or takes CUSTODIAN_BIN and
// CUSTODIAN_DEMO_BIN), starts the demo world in a process of its own,
// appends the `routes:` section of custodian.yaml to the configuration the
// world writes, exactly as docs/routes.md tells a reader to, and starts the
// gateway on it. A browser's cookie jar then signs in as alice through the
// demo provider and calls web.shop.v1.ShopService over Connect (JSON,
// binary, GET), gRPC-Web and gRPC with dynamic clients built from the
// descriptor set: every response is recorded as raw bytes and searched for
// the backends' internal field names and values, and every answer is
// decoded strictly with the public schema, so a field it does not declare
// fails the test in either encoding.
package routes_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"connectrpc.com/grpcreflect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"gopkg.in/yaml.v3"

	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// Bounds of the harness's waits.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	callTimeout  = 20 * time.Second
)

// Files of the example and of the run.
const (
	exampleConfig = "custodian.yaml" // this directory's, the one the docs show
	descriptorSet = "public.binpb"   // what custodian.yaml's routes.descriptors names
	shopService   = "web.shop.v1.ShopService"
)

func TestShopGateway(t *testing.T) {
	t.Parallel()
	start := time.Now()
	root := moduleRoot(t)
	// The world writes its configuration and secrets here; the descriptor
	// set and the gateway's configuration go next to them, so that the
	// routes section's relative `descriptors: public.binpb` resolves as it
	// does next to custodian.yaml.
	dir := t.TempDir()
	bins := prepare(t, root, filepath.Join(dir, descriptorSet))
	t.Logf("binaries and descriptor set ready in %v (gateway built with -race: %v)", since(start), bins.race)

	port := freePort(t)
	public, listen := "http://localhost:"+port, "http://127.0.0.1:"+port
	demoConfig := startWorld(t, bins.world, dir, public)
	shopConfig := filepath.Join(dir, "shop.yaml")
	appendRoutes(t, demoConfig, shopConfig)
	gw := newProcess(t, "custodian", bins.gateway, "--config", shopConfig, "--addr", "127.0.0.1:"+port, "--log-json")
	gw.start(nil)
	waitReady(t, gw, listen)
	t.Logf("gateway ready after %v", since(start))

	t.Run("the example's backends are the demo world's", func(t *testing.T) {
		t.Parallel()
		sameBackends(t, demoConfig)
	})

	schema := loadSchema(t, filepath.Join(dir, descriptorSet))
	env := &gt.Env{Public: public, Listen: listen}
	var seen gt.ResponseLog
	alice := env.BrowserRecording(t, &seen)
	alice.Login(t, "alice", "")
	alice.MustSession(t, "alice")
	anonymous := env.BrowserRecording(t, &seen)

	t.Run("calls", func(t *testing.T) {
		for _, p := range protocols() {
			t.Run(p.Name, func(t *testing.T) {
				t.Parallel()
				testShop(t, gw, newShop(t, schema, anonymous, p), newShop(t, schema, alice, p))
			})
		}
		t.Run("reflection", func(t *testing.T) {
			t.Parallel()
			// Not recorded: the recorder reads whole bodies, and
			// reflection is one long bidirectional stream.
			testReflection(t, env.Browser(t))
		})
	})
	t.Run("no backend-internal field in any response", func(t *testing.T) {
		wantNoInternals(t, schema, seen.All())
	})
	t.Run("refused configurations", func(t *testing.T) {
		testRefused(t, bins.gateway, demoConfig)
	})
	gw.checkRace(t)
	t.Logf("done after %v", since(start))
}

// TestExampleConfig checks custodian.yaml as a reader gets it: a valid
// configuration on its own, whose routes section is its last, so that
// appending that section to another configuration is all the demo needs.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	getenv := func(name string) string {
		return map[string]string{
			"CUSTODIAN_OIDC_CLIENT_SECRET": "example-secret",
			"CUSTODIAN_SESSION_KEYS":       key,
		}[name]
	}
	cfg, err := config.Parse(data, ".", getenv)
	if err != nil {
		t.Fatalf("%s does not load: %v", exampleConfig, err)
	}
	var got []string
	for _, r := range cfg.Routes.Methods {
		got = append(got, r.Public+" <- "+r.Backend+" "+r.Method)
	}
	want := []string{
		shopService + "/ListProducts <- catalog acme.catalog.v1.CatalogService/ListProducts",
		shopService + "/GetOrder <- orders acme.orders.v1.OrderService/GetOrder",
		shopService + "/ListOrders <- orders acme.orders.v1.OrderService/ListOrders",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes:\n got %q\nwant %q", got, want)
	}
	if cfg.Routes.Descriptors != filepath.Join(".", descriptorSet) {
		t.Errorf("routes.descriptors = %q, want %s next to %s", cfg.Routes.Descriptors, descriptorSet, exampleConfig)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0].Content
	if last := top[len(top)-2].Value; last != "routes" {
		t.Errorf("the last top-level key of %s is %q, want routes", exampleConfig, last)
	}
	if _, err := routesSection(data); err != nil {
		t.Error(err)
	}
}

// routesSection returns the text of data from its top-level `routes:` line
// to the end: what docs/routes.md and scripts/routes.sh append to the demo's
// configuration (sed -n '/^routes:/,$p').
func routesSection(data []byte) ([]byte, error) {
	i := bytes.Index(data, []byte("\nroutes:\n"))
	if i < 0 {
		return nil, fmt.Errorf("%s has no top-level `routes:` line", exampleConfig)
	}
	return data[i+1:], nil
}

// appendRoutes writes to dst the demo world's configuration followed by
// custodian.yaml's routes section.
func appendRoutes(t *testing.T, demoConfig, dst string) {
	t.Helper()
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := routesSection(example)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append(base, "\n# The routes of examples/routes/custodian.yaml.\n"...), routes...)
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// sameBackends fails unless every backend of custodian.yaml is declared
// in the demo world's configuration with the same protocol, token policy
// and audience: then the routes appended to it mean what they mean in
// custodian.yaml, and only the addresses differ.
func sameBackends(t *testing.T, demoConfig string) {
	t.Helper()
	demo, err := config.Load(demoConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var example struct {
		Backends []struct {
			Name, Protocol, Token, Audience string
		}
	}
	if err := yaml.Unmarshal(data, &example); err != nil {
		t.Fatal(err)
	}
	if len(example.Backends) == 0 {
		t.Fatalf("%s declares no backends", exampleConfig)
	}
	for _, want := range example.Backends {
		i := slices.IndexFunc(demo.Backends, func(b config.Backend) bool { return b.Name == want.Name })
		if i < 0 {
			t.Errorf("the demo world has no backend %q", want.Name)
			continue
		}
		got := demo.Backends[i]
		if got.Protocol != want.Protocol || got.Token != want.Token || got.Audience != want.Audience {
			t.Errorf("backend %s: the demo world's is %s, token %s, audience %q; %s says %s, token %s, audience %q",
				want.Name, got.Protocol, got.Token, got.Audience, exampleConfig, want.Protocol, want.Token, want.Audience)
		}
	}
}

// loadSchema reads the descriptor set the browser's dynamic clients use:
// the same file the gateway serves from.
func loadSchema(t *testing.T, path string) *protoregistry.Files {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// protocols are the ways a browser calls the gateway. Every one decodes
// strictly: binary keeps unknown fields (checked by unknownFields), JSON
// refuses them.
func protocols() []gt.RPC {
	strictJSON := connectproto.NewJSONCodec()
	strictJSON.UnmarshalOptions.DiscardUnknown = false
	codecs := connecthttp.WithCodecs(connectproto.NewBinaryCodec(), strictJSON)
	return []gt.RPC{
		{Name: "connect json", Opts: []connecthttp.Option{codecs, connecthttp.WithProtoJSON()}},
		{Name: "connect binary", Opts: []connecthttp.Option{codecs}},
		{Name: "connect get json", Opts: []connecthttp.Option{codecs, connecthttp.WithProtoJSON(), connecthttp.WithHTTPGet()}},
		{Name: "connect get binary", Opts: []connecthttp.Option{codecs, connecthttp.WithHTTPGet()}},
		{Name: "grpc-web", Opts: []connecthttp.Option{codecs, connecthttp.WithGRPCWeb()}},
		{Name: "grpc", Opts: []connecthttp.Option{codecs, connecthttp.WithGRPC()}, H2C: true},
	}
}

// shop is a dynamic ShopService client of one browser over one protocol,
// built from the descriptor set alone, as a tool without generated code
// would be.
type shop struct {
	service protoreflect.ServiceDescriptor
	client  *connect.Client
}

func newShop(t *testing.T, files *protoregistry.Files, b *gt.Browser, p gt.RPC) *shop {
	t.Helper()
	d, err := files.FindDescriptorByName(shopService)
	if err != nil {
		t.Fatalf("the descriptor set has no %s: %v", shopService, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("%s is not a service", shopService)
	}
	return &shop{service: sd, client: b.Client(p)}
}

// call calls method with the request written as protobuf JSON and returns
// the answer and the response's request id. Every call carries X-CSRF, as
// the browser clients do: the gateway requires it of a Connect GET that
// carries the session cookie.
func (s *shop) call(method, request string) (protoreflect.Message, string, error) {
	md := s.service.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, "", fmt.Errorf("%s has no method %s", shopService, method)
	}
	in := dynamicpb.NewMessage(md.Input())
	if err := protojson.Unmarshal([]byte(request), in); err != nil {
		return nil, "", err
	}
	spec := connect.Spec{
		Procedure:  "/" + shopService + "/" + method,
		Schema:     md,
		StreamType: connect.StreamTypeUnary,
	}
	// GET is for the methods the public schema marks NO_SIDE_EFFECTS.
	if md.Options().(*descriptorpb.MethodOptions).GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
		spec.IdempotencyLevel = connect.IdempotencyNoSideEffects
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("X-CSRF", "1")
	out := dynamicpb.NewMessage(md.Output())
	err := s.client.CallUnary(ctx, spec, in, out)
	id := info.ResponseHeader().Get(requestid.Header)
	if err != nil {
		return nil, id, err
	}
	if paths := unknownFields(out, string(md.Output().Name())); len(paths) > 0 {
		return nil, id, fmt.Errorf("%s: the answer has fields the public schema does not declare, at %s", method, strings.Join(paths, ", "))
	}
	return out, id, nil
}

// mustCall is call for answers that must succeed.
func (s *shop) mustCall(t *testing.T, method, request string) protoreflect.Message {
	t.Helper()
	out, _, err := s.call(method, request)
	if err != nil {
		t.Fatalf("%s %s: %v", method, request, err)
	}
	return out
}

// callsPerProtocol is how many ShopService calls testShop makes.
const callsPerProtocol = 9

// testShop calls every route as an anonymous browser and as alice.
func testShop(t *testing.T, gw *process, anonymous, alice *shop) {
	t.Run("anonymous ListProducts", func(t *testing.T) {
		first := anonymous.mustCall(t, "ListProducts", `{}`)
		wantProducts(t, first, 1, 20) // the catalog's default page size
		token := get(first, "next_page_token").String()
		if token == "" {
			t.Fatal("first page: no next_page_token")
		}
		second := anonymous.mustCall(t, "ListProducts", fmt.Sprintf(`{"pageToken": %q}`, token))
		wantProducts(t, second, 21, 24)
		if token := get(second, "next_page_token").String(); token != "" {
			t.Errorf("last page: next_page_token %q, want none", token)
		}
		books := anonymous.mustCall(t, "ListProducts", `{"category": "books", "pageSize": 50}`)
		wantProducts(t, books, 13, 18)
	})
	for _, tt := range []struct{ method, request string }{
		{"GetOrder", `{"orderId": "o-1001"}`},
		{"ListOrders", `{}`},
	} {
		t.Run("anonymous "+tt.method, func(t *testing.T) {
			_, _, err := anonymous.call(tt.method, tt.request)
			gt.WantReason(t, tt.method, err, session.ReasonNoSession)
		})
	}
	var all []protoreflect.Message
	t.Run("alice's ListOrders", func(t *testing.T) {
		first := alice.mustCall(t, "ListOrders", `{}`)
		token := get(first, "next_page_token").String()
		if token == "" {
			t.Fatal("first page: no next_page_token")
		}
		second := alice.mustCall(t, "ListOrders", fmt.Sprintf(`{"pageToken": %q}`, token))
		all = append(messages(get(first, "orders").List()), messages(get(second, "orders").List())...)
		// alice's orders, newest first: the demo's 15 orders but bob's
		// (o-1003, o-1008, o-1013), ten on a page by default.
		want := []string{"o-1015", "o-1014", "o-1012", "o-1011", "o-1010", "o-1009", "o-1007", "o-1006", "o-1005", "o-1004", "o-1002", "o-1001"}
		var got []string
		for _, o := range all {
			got = append(got, get(o, "order_id").String())
			wantOrder(t, o)
		}
		if !slices.Equal(got, want) {
			t.Errorf("orders:\n got %v\nwant %v", got, want)
		}
	})
	t.Run("alice's GetOrder", func(t *testing.T) {
		res := alice.mustCall(t, "GetOrder", `{"orderId": "o-1001"}`)
		o := get(res, "order").Message()
		wantOrder(t, o)
		if got := get(o, "order_id").String(); got != "o-1001" {
			t.Fatalf("order_id %q, want o-1001", got)
		}
		if got := get(o, "status").Enum(); got != 3 {
			t.Errorf("status %d, want ORDER_STATUS_DELIVERED (3)", got)
		}
		if got, want := get(o, "create_time").Message().Interface(), "2026-10-02T09:37:00Z"; protojsonString(got) != `"`+want+`"` {
			t.Errorf("create_time %s, want %s", protojsonString(got), want)
		}
		if len(all) > 0 && !proto.Equal(o.Interface(), all[len(all)-1].Interface()) {
			t.Errorf("GetOrder o-1001 = %s,\nListOrders has %s", protojsonString(o.Interface()), protojsonString(all[len(all)-1].Interface()))
		}
	})
	t.Run("alice's GetOrder of bob's order", func(t *testing.T) {
		_, id, err := alice.call("GetOrder", `{"orderId": "o-1003"}`)
		// The backend's error keeps its code and nothing else: its text,
		// which names the order, stays in the gateway's log, under the
		// request id the browser got.
		ce := gt.ConnectError(err)
		if ce == nil || ce.Code() != connect.CodeNotFound || strings.Contains(ce.Message(), "o-1003") || len(ce.Details()) > 0 {
			t.Fatalf("GetOrder o-1003: %v, want code not_found with a fixed message and no details", err)
		}
		if id == "" {
			t.Fatal("the answer has no " + requestid.Header)
		}
		if line := gw.logLine(id, `order "o-1003" not found`); line == "" {
			t.Errorf("no log line of request %s holds the backend's error:\n%s", id, gw.tail(4<<10))
		}
	})
}

// wantProducts fails unless res, a ListProductsResponse, holds the
// products p-<from> to p-<to> with their public fields set.
func wantProducts(t *testing.T, res protoreflect.Message, from, to int) {
	t.Helper()
	var got, want []string
	for i := from; i <= to; i++ {
		want = append(want, fmt.Sprintf("p-%04d", i))
	}
	for _, p := range messages(get(res, "products").List()) {
		got = append(got, get(p, "product_id").String())
		if get(p, "name").String() == "" || get(p, "description").String() == "" || get(p, "category").String() == "" ||
			get(p, "price_minor").Int() <= 0 || get(p, "currency_code").String() != "EUR" {
			t.Errorf("product %s", protojsonString(p.Interface()))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("products:\n got %v\nwant %v", got, want)
	}
}

// wantOrder fails unless o, an Order, has its public fields set and adds
// up.
func wantOrder(t *testing.T, o protoreflect.Message) {
	t.Helper()
	lines := messages(get(o, "lines").List())
	var total int64
	for _, l := range lines {
		total += get(l, "unit_price_minor").Int() * get(l, "quantity").Int()
	}
	if len(lines) == 0 || total <= 0 || total != get(o, "total_minor").Int() || get(o, "currency_code").String() != "EUR" ||
		!o.Has(o.Descriptor().Fields().ByName("create_time")) || get(o, "status").Enum() == 0 {
		t.Errorf("order %s", protojsonString(o.Interface()))
	}
}

// get returns the field name of m, which must exist.
func get(m protoreflect.Message, name string) protoreflect.Value {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("%s has no field %s", m.Descriptor().FullName(), name))
	}
	return m.Get(fd)
}

func messages(l protoreflect.List) []protoreflect.Message {
	out := make([]protoreflect.Message, l.Len())
	for i := range out {
		out[i] = l.Get(i).Message()
	}
	return out
}

func protojsonString(m proto.Message) string {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// unknownFields returns the paths of m's messages that hold unknown
// fields: bytes the public schema does not declare, which a binary decode
// keeps.
func unknownFields(m protoreflect.Message, path string) []string {
	var out []string
	if len(m.GetUnknown()) > 0 {
		out = append(out, path)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i, e := range messages(v.List()) {
				out = append(out, unknownFields(e, fmt.Sprintf("%s[%d]", p, i))...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, unknownFields(mv.Message(), fmt.Sprintf("%s[%v]", p, k))...)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			out = append(out, unknownFields(v.Message(), p)...)
		}
		return true
	})
	return out
}

// testReflection asks server reflection, as grpcurl would, for the public
// schema and for the backends': only the public one is described.
func testReflection(t *testing.T, b *gt.Browser) {
	grpc := gt.RPC{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	stream := grpcreflect.NewClient(b.Client(grpc)).NewStream(ctx)
	t.Cleanup(func() { _ = stream.Close() })
	services, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(services, shopService) {
		t.Errorf("ListServices = %v, want %s among them", services, shopService)
	}
	files, err := stream.FileContainingSymbol(shopService)
	if err != nil || len(files) == 0 || files[0].GetName() != "web/shop/v1/shop.proto" {
		t.Fatalf("FileContainingSymbol(%s) = %d files, %v; want web/shop/v1/shop.proto first", shopService, len(files), err)
	}
	for _, f := range files {
		if strings.HasPrefix(f.GetPackage(), "acme.") {
			t.Errorf("FileContainingSymbol(%s) describes %s, a backend's file", shopService, f.GetName())
		}
	}
	for _, name := range []string{"acme.orders.v1.Order", "acme.orders.v1.OrderService", "acme.catalog.v1.Product"} {
		if _, err := stream.FileContainingSymbol(protoreflect.FullName(name)); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("FileContainingSymbol(%s): %v, want not_found", name, err)
		}
	}
	for _, name := range []string{"acme/orders/v1/orders.proto", "acme/catalog/v1/catalog.proto"} {
		if _, err := stream.FileByFilename(name); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("FileByFilename(%s): %v, want not_found", name, err)
		}
	}
}

// internalValues are values that only the backends' internal fields hold
// (demo/backends/seed.go and catalog.go), as they would appear in a JSON or
// binary body, and the text of the backend error of the GetOrder of bob's
// order. Numbers (fraud scores, costs, margins, stock) are not searched
// for: they would be unknown fields, which every call checks.
var internalValues = []string{
	".acme.internal",          // storage_host, shard_host, warehouse_host
	"catalog-shard-1",         // ListProductsResponse.shard_host
	"img-store-2",             // Product.storage_host
	"sup-",                    // Product.supplier_id
	"/images/p-",              // Product.image_path
	"Best seller in Q4",       // Product.staff_notes of p-0001
	"MAP agreement",           // Product.staff_notes of p-0005
	"psp_ch_",                 // Order.payment_reference
	"FUL-",                    // Order.internal_status_code
	"promised AM slot",        // Order.staff_notes
	"verified manually",       // Order.staff_notes
	"Partial refund",          // Order.staff_notes
	"Fraud rule R17",          // Order.staff_notes
	"Gift wrap requested",     // Order.staff_notes
	"alice",                   // Order.subject
	"o-1003",                  // bob's order, named by the backend's error text
	"acme.orders.v1",          // a type URL or error detail of a backend
	"acme.catalog.v1",         // a type URL or error detail of a backend
	"wh-rotterdam", "wh-lyon", // Order.warehouse_host
}

// wantNoInternals searches every recorded ShopService response (status,
// headers, body, trailers) for the names of the backend fields the public
// schema leaves out, in proto and JSON form, and for internalValues.
func wantNoInternals(t *testing.T, files *protoregistry.Files, seen []gt.Recorded) {
	markers := append(slices.Clone(internalValues), undeclaredNames(t, files)...)
	var n, gets int
	for _, r := range seen {
		if !strings.Contains(r.What, "/"+shopService+"/") {
			continue
		}
		n++
		if strings.HasPrefix(r.What, "GET ") {
			gets++
		}
		var found []string
		for _, m := range markers {
			if strings.Contains(r.Text, m) {
				found = append(found, m)
			}
		}
		if len(found) > 0 {
			t.Errorf("%s: the response holds %q: %.600q", r.What, found, r.Text)
		}
	}
	// Every protocol made its calls, and the GET protocols used GET.
	if want := len(protocols()) * callsPerProtocol; n < want {
		t.Errorf("%d ShopService responses recorded, want at least %d", n, want)
	}
	if gets == 0 {
		t.Error("no ShopService call was made with GET")
	}
	t.Logf("%d ShopService responses searched for %d markers (%d over GET)", n, len(markers), gets)
}

// undeclaredNames returns the names, as in the schema and in JSON, of the
// fields of the backend answers that the public answers leave out, found
// by comparing the descriptor set's types by field name.
func undeclaredNames(t *testing.T, files *protoregistry.Files) []string {
	t.Helper()
	pairs := map[string]string{
		"acme.catalog.v1.ListProductsResponse": "web.shop.v1.ListProductsResponse",
		"acme.catalog.v1.Product":              "web.shop.v1.Product",
		"acme.orders.v1.ListOrdersResponse":    "web.shop.v1.ListOrdersResponse",
		"acme.orders.v1.GetOrderResponse":      "web.shop.v1.GetOrderResponse",
		"acme.orders.v1.Order":                 "web.shop.v1.Order",
		"acme.orders.v1.OrderLine":             "web.shop.v1.OrderLine",
	}
	find := func(name string) protoreflect.MessageDescriptor {
		d, err := files.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		return d.(protoreflect.MessageDescriptor)
	}
	var names []string
	for backend, public := range pairs {
		b, p := find(backend), find(public)
		for i := range b.Fields().Len() {
			f := b.Fields().Get(i)
			if p.Fields().ByName(f.Name()) == nil {
				names = append(names, string(f.Name()), f.JSONName())
			}
		}
	}
	if len(names) < 2*12 {
		t.Fatalf("only %d names of internal fields: %v", len(names), names)
	}
	return names
}

// refusal is a configuration the gateway must refuse to start with.
type refusal struct {
	name   string
	routes string // the routes section
	want   string // in the gateway's error
}

// testRefused starts the gateway binary on the demo's configuration with
// broken routes: each start fails at once, naming the route and the field.
func testRefused(t *testing.T, gateway, demoConfig string) {
	base, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	const head = "routes:\n  descriptors: public.binpb\n  methods:\n"
	tests := []refusal{
		{
			name: "a public field the backend lacks",
			routes: head + "    - public: web.shop.v1.ShopService/GetOrder\n" +
				"      backend: catalog\n      method: acme.catalog.v1.CatalogService/GetProduct\n",
			want: `routes.methods[0] (web.shop.v1.ShopService/GetOrder): web.shop.v1.GetOrderRequest field order_id: backend message acme.catalog.v1.GetProductRequest has no field "order_id"`,
		},
		{
			name: "a public type from the backend's schema",
			routes: head + "    - public: acme.orders.v1.OrderService/GetOrder\n" +
				"      backend: orders\n      method: acme.orders.v1.OrderService/GetOrder\n",
			want: `routes.methods[0] (acme.orders.v1.OrderService/GetOrder): the public schema imports the backend's file acme/orders/v1/orders.proto`,
		},
		{
			name: "a bound field the browser could set",
			routes: head + "    - public: web.shop.v1.ShopService/GetOrder\n" +
				"      backend: orders\n      method: acme.orders.v1.OrderService/GetOrder\n      bind: {order_id: sub}\n",
			want: `cannot bind acme.orders.v1.GetOrderRequest.order_id: public request web.shop.v1.GetOrderRequest has a field of that name, so a browser could set it`,
		},
		{
			name: "an anonymous route on the user's token",
			routes: head + "    - public: web.shop.v1.ShopService/ListOrders\n" +
				"      backend: orders\n      method: acme.orders.v1.OrderService/ListOrders\n      anonymous: true\n",
			want: `routes.methods[0].anonymous: a route with the "user" token policy needs a session`,
		},
		{
			name: "a missing method",
			routes: head + "    - public: web.shop.v1.ShopService/CancelOrder\n" +
				"      backend: orders\n      method: acme.orders.v1.OrderService/GetOrder\n",
			want: `routes.methods[0] (web.shop.v1.ShopService/CancelOrder): public: method CancelOrder not found in service web.shop.v1.ShopService`,
		},
	}
	dir := filepath.Dir(demoConfig)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, fmt.Sprintf("refused-%d.yaml", i))
			if err := os.WriteFile(path, append(append(slices.Clone(base), '\n'), tt.routes...), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, gateway, "--config", path, "--addr", "127.0.0.1:0")
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != 1 {
				t.Fatalf("exit code %d (%v), want 1; output:\n%s", code, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output:\n%s\nwant it to hold:\n%s", out, tt.want)
			}
		})
	}
}

func exitCode(err error) int {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// binaries are the commands under test.
type binaries struct {
	gateway string // cmd/custodian
	world   string // cmd/custodian-demo
	race    bool   // the gateway was built with the race detector
}

// moduleRoot returns the repository's root: the module this test belongs
// to, two directories up.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/custodian-bff/custodian\n")) {
		t.Fatalf("the Custodian module is not at %s: %v", root, err)
	}
	return root
}

// raceEnabled reports whether this test runs under the race detector; the
// gateway it builds is then built with it too, so a data race in the
// gateway fails the test (process.checkRace).
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// prepare builds the descriptor set into desc and, unless CUSTODIAN_BIN
// and CUSTODIAN_DEMO_BIN name them (scripts/test.sh builds them once for
// every suite), the binaries, all at once.
func prepare(t *testing.T, root, desc string) binaries {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	b := binaries{gateway: os.Getenv("CUSTODIAN_BIN"), world: os.Getenv("CUSTODIAN_DEMO_BIN")}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	// The workspace of buf.yaml: the public schema and the backends'.
	wg.Go(func() { errs[0] = run("tool", "buf", "build", "-o", desc) })
	if b.gateway == "" || b.world == "" {
		dir := t.TempDir()
		b = binaries{gateway: filepath.Join(dir, "custodian"), world: filepath.Join(dir, "custodian-demo"), race: raceEnabled()}
		wg.Go(func() {
			args := []string{"build", "-o", b.gateway}
			if b.race {
				args = append(args, "-race")
			}
			errs[1] = run(append(args, "./cmd/custodian")...)
		})
		wg.Go(func() { errs[2] = run("build", "-o", b.world, "./cmd/custodian-demo") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return b
}

// freePort returns a port free on 127.0.0.1 a moment ago. Another process
// may take it before the gateway listens on it; on a test machine that is
// rare enough.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startWorld starts custodian-demo for one gateway at public, writing into
// dir, and returns the gateway configuration it wrote once it is ready.
func startWorld(t *testing.T, bin, dir, public string) string {
	t.Helper()
	world := newProcess(t, "custodian-demo", bin, "--addr", "127.0.0.1:0", "--out", dir, "--gateway", public, "--log-json")
	pr, pw := io.Pipe()
	world.start(pw)
	t.Cleanup(func() { pw.Close() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	var ready struct {
		Issuer  string   `json:"issuer"`
		Configs []string `json:"configs"`
	}
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("custodian-demo exited before it was ready:\n%s", world.tail(4<<10))
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil || len(ready.Configs) != 1 {
			t.Fatalf("custodian-demo's ready line %q: %v", line, err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("custodian-demo not ready within %v:\n%s", startTimeout, world.tail(4<<10))
	}
	return ready.Configs[0]
}

// waitReady polls the gateway's /readyz until it answers 200.
func waitReady(t *testing.T, p *process, listen string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := client.Get(listen + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.running() {
			t.Fatalf("%s exited:\n%s", p.name, p.tail(4<<10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz not 200 within %v (last: %v):\n%s", p.name, startTimeout, err, p.tail(4<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }

// process is a child process whose output goes to a log file, shown when
// the test fails.
type process struct {
	t    *testing.T
	name string
	bin  string
	args []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newProcess(t *testing.T, name, bin string, args ...string) *process {
	p := &process{t: t, name: name, bin: bin, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, p.tail(12<<10))
		}
	})
	return p
}

// start starts the process; its stdout, when stdout is not nil, goes there
// instead of the log.
func (p *process) start(stdout io.Writer) {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// A data race in a child ends it at once, with the report in its log.
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// stop stops the process with SIGTERM, killing it after stopTimeout.
func (p *process) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// tail returns the last n bytes of the log.
func (p *process) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// logLine returns the first JSON log line of request id whose text holds
// want, "" if there is none. The gateway writes its log every 100 ms:
// logLine looks again for up to logWait before it gives up.
func (p *process) logLine(id, want string) string {
	deadline := time.Now().Add(logWait)
	for {
		if line := p.findLogLine(id, want); line != "" || time.Now().After(deadline) {
			return line
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logWait bounds logLine's wait for a line.
const logWait = 3 * time.Second

func (p *process) findLogLine(id, want string) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != id {
			continue
		}
		for _, v := range rec {
			if s, ok := v.(string); ok && strings.Contains(s, want) {
				return line
			}
		}
	}
	return ""
}

// checkRace fails the test when the process reported a data race.
func (p *process) checkRace(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Error(err)
		return
	}
	if i := bytes.Index(b, []byte("WARNING: DATA RACE")); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", p.name, b[i:min(len(b), i+8<<10)])
	}
}
