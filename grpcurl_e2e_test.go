package custodian_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// installGrpcurl is how to get the grpcurl the tests use, as
// scripts/test.sh does.
const installGrpcurl = "GOBIN=$PWD/.build/bin GOFLAGS= go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 && export GRPCURL=$PWD/.build/bin/grpcurl"

// findGrpcurl returns the grpcurl to run: $GRPCURL, which must be an
// executable; without it, in CI (CI=true) an error, since scripts/test.sh
// installs grpcurl and names it there, and elsewhere grpcurl on PATH. The
// test fails, and never skips, when there is none.
func findGrpcurl(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if bin := getenv("GRPCURL"); bin != "" {
		path, err := lookPath(bin)
		if err != nil {
			return "", fmt.Errorf("$GRPCURL=%q is not an executable: %w; install it with %s", bin, err, installGrpcurl)
		}
		return path, nil
	}
	if getenv("CI") == "true" {
		return "", fmt.Errorf("$GRPCURL is not set in CI: scripts/test.sh installs grpcurl and names it in $GRPCURL (%s)", installGrpcurl)
	}
	path, err := lookPath("grpcurl")
	if err != nil {
		return "", fmt.Errorf("grpcurl is not installed: set $GRPCURL or put grpcurl on PATH (%s): %w", installGrpcurl, err)
	}
	return path, nil
}

func TestFindGrpcurl(t *testing.T) {
	t.Parallel()
	const installed = "/opt/bin/grpcurl"
	lookPath := func(file string) (string, error) {
		switch file {
		case installed:
			return installed, nil
		case "grpcurl":
			return "/usr/bin/grpcurl", nil
		}
		return "", exec.ErrNotFound
	}
	notOnPath := func(file string) (string, error) {
		if file == installed {
			return installed, nil
		}
		return "", exec.ErrNotFound
	}
	cases := []struct {
		name     string
		env      map[string]string
		lookPath func(string) (string, error)
		want     string // "" for an error
	}{
		{"CI with $GRPCURL", map[string]string{"CI": "true", "GRPCURL": installed}, lookPath, installed},
		{"CI without $GRPCURL, though grpcurl is on PATH", map[string]string{"CI": "true"}, lookPath, ""},
		{"CI with $GRPCURL not executable", map[string]string{"CI": "true", "GRPCURL": "/tmp/not-grpcurl"}, lookPath, ""},
		{"locally with $GRPCURL", map[string]string{"GRPCURL": installed}, notOnPath, installed},
		{"locally with $GRPCURL not executable", map[string]string{"GRPCURL": "/tmp/not-grpcurl"}, lookPath, ""},
		{"locally, grpcurl on PATH", nil, lookPath, "/usr/bin/grpcurl"},
		{"locally, no grpcurl", nil, notOnPath, ""},
		{"CI=false counts as locally", map[string]string{"CI": "false"}, lookPath, "/usr/bin/grpcurl"},
	}
	for _, c := range cases {
		got, err := findGrpcurl(func(k string) string { return c.env[k] }, c.lookPath)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: found %q, want an error", c.name, got)
			} else if !strings.Contains(err.Error(), "go install github.com/fullstorydev/grpcurl") {
				t.Errorf("%s: error %q does not say how to install grpcurl", c.name, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := findGrpcurl(func(string) string { return "" }, notOnPath); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("the lookup's error is not wrapped: %v", err)
	}
}

// backendFiles are the backends' schemas. The gateway links them, to call
// the backends, but serves none of them: reflection must not describe them.
var backendFiles = []protoreflect.FileDescriptor{
	catalogv1.File_acme_catalog_v1_catalog_proto,
	ordersv1.File_acme_orders_v1_orders_proto,
	profilesv1.File_acme_profiles_v1_profiles_proto,
	loyaltyv1.File_acme_loyalty_v1_loyalty_proto,
}

// publicFiles are the schemas the gateway serves.
var publicFiles = []protoreflect.FileDescriptor{
	storefrontv1.File_acme_storefront_v1_account_proto,
	storefrontv1.File_acme_storefront_v1_product_proto,
	storefrontv1.File_acme_storefront_v1_types_proto,
	custodianv1.File_custodian_v1_auth_proto,
	custodianv1.File_custodian_v1_session_proto,
	custodianv1.File_custodian_v1_errors_proto,
}

// schemaDecl is one declaration of a schema file.
type schemaDecl struct {
	name protoreflect.FullName
	// named is true for what grpcurl describes by name: services, methods,
	// messages and enums; false for fields, oneofs, enum values and
	// extensions.
	named bool
}

// declarations lists every declaration of fd, nested ones included.
func declarations(fd protoreflect.FileDescriptor) []schemaDecl {
	var out []schemaDecl
	add := func(d protoreflect.Descriptor, named bool) { out = append(out, schemaDecl{d.FullName(), named}) }
	var enums func(protoreflect.EnumDescriptors)
	enums = func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			add(es.Get(i), true)
			for j := range es.Get(i).Values().Len() {
				add(es.Get(i).Values().Get(j), false)
			}
		}
	}
	var messages func(protoreflect.MessageDescriptors, protoreflect.ExtensionDescriptors)
	messages = func(ms protoreflect.MessageDescriptors, xs protoreflect.ExtensionDescriptors) {
		for i := range xs.Len() {
			add(xs.Get(i), false)
		}
		for i := range ms.Len() {
			m := ms.Get(i)
			add(m, true)
			for j := range m.Fields().Len() {
				add(m.Fields().Get(j), false)
			}
			for j := range m.Oneofs().Len() {
				add(m.Oneofs().Get(j), false)
			}
			enums(m.Enums())
			messages(m.Messages(), m.Extensions())
		}
	}
	messages(fd.Messages(), fd.Extensions())
	enums(fd.Enums())
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		add(s, true)
		for j := range s.Methods().Len() {
			add(s.Methods().Get(j), true)
		}
	}
	return out
}

// fieldNames adds the proto and JSON names of every field of fd to names.
func fieldNames(fd protoreflect.FileDescriptor, names map[string]bool) {
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			fields := ms.Get(i).Fields()
			for j := range fields.Len() {
				names[string(fields.Get(j).Name())] = true
				names[fields.Get(j).JSONName()] = true
			}
			walk(ms.Get(i).Messages())
		}
	}
	walk(fd.Messages())
}

// internalFieldNames are the names (proto and JSON) of the fields of a
// backend's messages that no public message has: cost_price_minor,
// supplier_id, storage_host, staff_notes, margin_bps and the like.
func internalFieldNames(t *testing.T) map[string]bool {
	t.Helper()
	public, internal := map[string]bool{}, map[string]bool{}
	for _, fd := range publicFiles {
		fieldNames(fd, public)
	}
	for _, fd := range backendFiles {
		fieldNames(fd, internal)
	}
	for name := range public {
		delete(internal, name)
	}
	for _, name := range []string{"cost_price_minor", "supplier_id", "storage_host", "staff_notes", "margin_bps", "costPriceMinor"} {
		if !internal[name] {
			t.Fatalf("%s is not an internal field name of the backends' schemas", name)
		}
	}
	return internal
}

// leakedFieldName returns an internal field name that out names, or "".
func leakedFieldName(out string, internal map[string]bool) string {
	for _, word := range strings.FieldsFunc(out, func(r rune) bool {
		return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if internal[word] {
			return word
		}
	}
	return ""
}

// servedServices are what the demo gateway serves, and all that reflection
// lists.
var servedServices = []string{
	"acme.storefront.v1.AccountService", "acme.storefront.v1.ProductService",
	"custodian.v1.AuthService", "custodian.v1.SessionService", "grpc.health.v1.Health",
}

// grpcurlCase is one run of grpcurl: its flags, then the address, then the
// verb or method.
type grpcurlCase struct {
	name  string
	flags []string
	args  []string
	want  []string
	deny  []string
	// notFound is true when grpcurl must fail because reflection answers
	// not_found.
	notFound bool
	// exactLines, when set, is the whole output, one line each, in any order.
	exactLines []string
}

// TestGrpcurl drives the gateway with grpcurl, as an operator would: listing
// and describing services through reflection and calling methods. The test
// script installs grpcurl and names it in $GRPCURL. Reflection lists and
// describes the public schema only: every service, method, message and enum
// of a backend's schema, linked into the gateway, is not found, and no
// output names an internal field.
func TestGrpcurl(t *testing.T) {
	t.Parallel()
	bin, err := findGrpcurl(os.Getenv, exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	internal := internalFieldNames(t)
	e := gt.NewDemoEnv(t)
	addr := strings.TrimPrefix(e.Listen, "http://")
	cases := []grpcurlCase{
		{name: "list", args: []string{"list"}, exactLines: servedServices},
		{name: "describe", args: []string{"describe", "acme.storefront.v1.ProductService"}, want: []string{"rpc ListProducts", "rpc GetProduct", "NO_SIDE_EFFECTS"}},
		{name: "describe message", args: []string{"describe", "acme.storefront.v1.Product"}, want: []string{"image_url", "price"}, deny: []string{"cost", "supplier"}},
		{name: "describe all", args: []string{"describe"}, want: servedServices},
		{name: "call", flags: []string{"-d", `{"page_size": 2}`}, args: []string{"acme.storefront.v1.ProductService/ListProducts"}, want: []string{`"productId": "p-0001"`, "nextPageToken"}, deny: []string{"supplier"}},
		{name: "health", args: []string{"grpc.health.v1.Health/Check"}, want: []string{`"status": "SERVING"`}},
	}
	// Every named declaration of the served schema is described.
	for _, fd := range publicFiles {
		if fd == custodianv1.File_custodian_v1_errors_proto {
			continue // no served service imports it
		}
		for _, d := range declarations(fd) {
			if d.named {
				cases = append(cases, grpcurlCase{name: "describe " + string(d.name), args: []string{"describe", string(d.name)}, want: []string{string(d.name.Name())}})
			}
		}
	}
	// No named declaration of a backend's schema is.
	for _, fd := range backendFiles {
		for _, d := range declarations(fd) {
			if d.named {
				cases = append(cases, grpcurlCase{name: "describe " + string(d.name), args: []string{"describe", string(d.name)}, notFound: true})
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-plaintext", "-max-time", "20"}, c.flags...)
			args = append(append(args, addr), c.args...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if c.notFound {
				if err == nil {
					t.Errorf("grpcurl %v succeeded, want not found:\n%s", c.args, out)
				} else if !strings.Contains(string(out), "not found") {
					t.Errorf("grpcurl %v: %v, want not found:\n%s", c.args, err, out)
				}
			} else if err != nil {
				t.Fatalf("grpcurl %v: %v\n%s", c.args, err, out)
			}
			if word := leakedFieldName(string(out), internal); word != "" {
				t.Errorf("grpcurl %v: output names the internal field %s:\n%s", c.args, word, out)
			}
			if c.exactLines != nil {
				got := strings.Fields(string(out))
				if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(c.exactLines))) {
					t.Errorf("grpcurl %v = %q, want %q", c.args, got, c.exactLines)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("grpcurl %v: output lacks %q:\n%s", c.args, w, out)
				}
			}
			for _, d := range c.deny {
				if strings.Contains(string(out), d) {
					t.Errorf("grpcurl %v: output contains %q:\n%s", c.args, d, out)
				}
			}
		})
	}
}

// TestReflectionBackendSchemas asks reflection, as grpcurl would, for every
// file and every declaration (fields and enum values included) of the
// backends' schemas: each is not_found, and the files the gateway serves
// are found.
func TestReflectionBackendSchemas(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	b := e.Browser(t)
	grpc := gt.RPC{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true}
	stream := grpcreflect.NewClient(b.Client(grpc)).NewStream(t.Context())
	t.Cleanup(func() { _ = stream.Close() })
	notFound := func(what string, files []*descriptorpb.FileDescriptorProto, err error) {
		t.Helper()
		if grpcreflect.IsReflectionStreamBroken(err) {
			t.Fatalf("%s: stream broken: %v", what, err)
		}
		if code := connect.CodeOf(err); err == nil || code != connect.CodeNotFound {
			var names []string
			for _, f := range files {
				names = append(names, f.GetName())
			}
			t.Errorf("%s = %v, %v; want not_found", what, names, err)
		}
	}
	for _, fd := range backendFiles {
		files, err := stream.FileByFilename(fd.Path())
		notFound("FileByFilename("+fd.Path()+")", files, err)
		for _, d := range declarations(fd) {
			files, err := stream.FileContainingSymbol(d.name)
			notFound("FileContainingSymbol("+string(d.name)+")", files, err)
		}
	}
	for _, fd := range publicFiles {
		if fd == custodianv1.File_custodian_v1_errors_proto {
			continue // no served service imports it
		}
		if _, err := stream.FileByFilename(fd.Path()); err != nil {
			t.Errorf("FileByFilename(%s): %v", fd.Path(), err)
		}
	}
}
