package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server"
)

const healthServiceName = "grpc.health.v1.Health"

// hasService reports whether one of files declares package.service.
func hasService(files []*descriptorpb.FileDescriptorProto, fullName string) bool {
	for _, f := range files {
		for _, s := range f.GetService() {
			if f.GetPackage()+"."+s.GetName() == fullName {
				return true
			}
		}
	}
	return false
}

func TestReflection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []connecthttp.Option
	}{
		{name: "gRPC over h2c", opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "gRPC-Web over h2c", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{name: "connect over h2c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t)
			httpClient, _ := h2cClient(t)
			stream := grpcreflect.NewClient(newConnectClient(httpClient, h.URL(), tt.opts...)).NewStream(t.Context())
			t.Cleanup(func() { _ = stream.Close() })

			names, err := stream.ListServices()
			if err != nil {
				t.Fatalf("ListServices: %v", err)
			}
			// Reflection lists the registered services and health, not
			// every schema linked into the binary.
			for _, want := range []protoreflect.FullName{storefrontv1connect.ProductServiceName, healthServiceName} {
				if !slices.Contains(names, want) {
					t.Errorf("ListServices = %v, missing %s", names, want)
				}
			}
			if slices.Contains(names, "acme.storefront.v1.AccountService") {
				t.Errorf("ListServices = %v lists AccountService, which is not registered", names)
			}

			for _, symbol := range []protoreflect.FullName{storefrontv1connect.ProductServiceName, healthServiceName} {
				files, err := stream.FileContainingSymbol(symbol)
				if err != nil {
					t.Fatalf("FileContainingSymbol(%s): %v", symbol, err)
				}
				if !hasService(files, string(symbol)) {
					t.Errorf("FileContainingSymbol(%s) returned files %v, none declares it", symbol, fileNames(files))
				}
			}

			_, err = stream.FileContainingSymbol("acme.storefront.v1.NoSuchService")
			if err == nil {
				t.Error("FileContainingSymbol of an unknown symbol succeeded")
			}
		})
	}
}

func fileNames(files []*descriptorpb.FileDescriptorProto) []string {
	var names []string
	for _, f := range files {
		names = append(names, f.GetName())
	}
	return names
}

func TestReflectionV1Alpha(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	httpClient, _ := h2cClient(t)
	client := newConnectClient(httpClient, h.URL(), connecthttp.WithGRPC())
	stream, err := client.CallClientStream(t.Context(), connect.Spec{
		StreamType: connect.StreamTypeBidi,
		Procedure:  reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName,
	})
	if err != nil {
		t.Fatalf("CallClientStream: %v", err)
	}
	if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{
		MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	var res reflectionv1alpha.ServerReflectionResponse
	if err := stream.Receive(&res); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{storefrontv1connect.ProductServiceName, healthServiceName} {
		if !slices.Contains(names, want) {
			t.Errorf("v1alpha list_services = %v, missing %s", names, want)
		}
	}
	if err := stream.Receive(&res); !errors.Is(err, io.EOF) {
		t.Errorf("second Receive = %v, want io.EOF", err)
	}
	if err := stream.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Schemas linked into the test binary that the test servers never serve:
// a backend's, with its internal fields. Reflection must not describe them.
var _ = catalogv1.File_acme_catalog_v1_catalog_proto

// declared lists the full names of every declaration of fd: messages,
// fields, oneofs, enums, enum values, services, methods and extensions,
// nested ones included.
func declared(fd protoreflect.FileDescriptor) []protoreflect.FullName {
	var names []protoreflect.FullName
	var enums func(protoreflect.EnumDescriptors)
	enums = func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			e := es.Get(i)
			names = append(names, e.FullName())
			for j := range e.Values().Len() {
				names = append(names, e.Values().Get(j).FullName())
			}
		}
	}
	exts := func(xs protoreflect.ExtensionDescriptors) {
		for i := range xs.Len() {
			names = append(names, xs.Get(i).FullName())
		}
	}
	var messages func(protoreflect.MessageDescriptors)
	messages = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			names = append(names, m.FullName())
			for j := range m.Fields().Len() {
				names = append(names, m.Fields().Get(j).FullName())
			}
			for j := range m.Oneofs().Len() {
				names = append(names, m.Oneofs().Get(j).FullName())
			}
			enums(m.Enums())
			exts(m.Extensions())
			messages(m.Messages())
		}
	}
	messages(fd.Messages())
	enums(fd.Enums())
	exts(fd.Extensions())
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		names = append(names, s.FullName())
		for j := range s.Methods().Len() {
			names = append(names, s.Methods().Get(j).FullName())
		}
	}
	return names
}

// wantNotFound fails unless err is reflection's not_found, leaving the
// stream usable.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: found, want not_found", what)
		return
	}
	if grpcreflect.IsReflectionStreamBroken(err) {
		t.Fatalf("%s: stream broken: %v", what, err)
	}
	if code := connect.CodeOf(err); code != connect.CodeNotFound {
		t.Errorf("%s: %v (%v), want not_found", what, code, err)
	}
}

// reflectionStream opens a reflection stream to baseURL over gRPC.
func reflectionStream(t *testing.T, baseURL string) *grpcreflect.ClientStream {
	t.Helper()
	httpClient, _ := h2cClient(t)
	stream := grpcreflect.NewClient(newConnectClient(httpClient, baseURL, connecthttp.WithGRPC())).NewStream(t.Context())
	t.Cleanup(func() { _ = stream.Close() })
	return stream
}

// TestReflectionPublicSchemaOnly tries every file, symbol and extension
// linked into the test binary: reflection describes the files of the served
// services (ProductService and health) and their imports, and answers
// not_found for everything else, a backend's internal schema included.
func TestReflectionPublicSchemaOnly(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	served := map[string]bool{
		"acme/storefront/v1/product.proto": true, // ProductService
		"acme/storefront/v1/types.proto":   true, // imported by product.proto
		"google/protobuf/timestamp.proto":  true, // imported by types.proto
		"grpc/health/v1/health.proto":      true, // the listener's own health
	}
	type file struct {
		path    string
		symbols []protoreflect.FullName
	}
	var public, private []file
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		f := file{fd.Path(), declared(fd)}
		if served[f.path] {
			public = append(public, f)
		} else {
			private = append(private, f)
		}
		return true
	})
	if len(public) != len(served) {
		t.Fatalf("the test binary links %d of the served files %v", len(public), served)
	}
	// The table must hold the schemas that matter: a backend's, and the
	// browser-facing service that is linked but not mounted.
	for _, path := range []string{
		"acme/catalog/v1/catalog.proto", "acme/storefront/v1/account.proto",
		"custodian/v1/session.proto", "google/protobuf/descriptor.proto",
	} {
		if !slices.ContainsFunc(private, func(f file) bool { return f.path == path }) {
			t.Fatalf("%s is not linked into the test binary", path)
		}
	}

	for _, f := range public {
		t.Run("served "+f.path, func(t *testing.T) {
			t.Parallel()
			stream := reflectionStream(t, h.URL())
			files, err := stream.FileByFilename(f.path)
			if err != nil {
				t.Fatalf("FileByFilename(%s): %v", f.path, err)
			}
			if got := files[0].GetName(); got != f.path {
				t.Errorf("FileByFilename(%s) = %s", f.path, got)
			}
			for _, symbol := range f.symbols {
				files, err := stream.FileContainingSymbol(symbol)
				if err != nil {
					t.Errorf("FileContainingSymbol(%s): %v", symbol, err)
					continue
				}
				// Every import comes along, and only public files.
				if got := files[0].GetName(); got != f.path {
					t.Errorf("FileContainingSymbol(%s) = %s, want %s", symbol, got, f.path)
				}
				for _, fd := range files {
					if !served[fd.GetName()] {
						t.Errorf("FileContainingSymbol(%s) sent %s, which is not served", symbol, fd.GetName())
					}
				}
			}
		})
	}
	for _, f := range private {
		t.Run("not served "+f.path, func(t *testing.T) {
			t.Parallel()
			stream := reflectionStream(t, h.URL())
			_, err := stream.FileByFilename(f.path)
			wantNotFound(t, "FileByFilename("+f.path+")", err)
			for _, symbol := range f.symbols {
				_, err := stream.FileContainingSymbol(symbol)
				wantNotFound(t, "FileContainingSymbol("+string(symbol)+")", err)
			}
		})
	}

	t.Run("extensions", func(t *testing.T) {
		t.Parallel()
		stream := reflectionStream(t, h.URL())
		n := 0
		protoregistry.GlobalTypes.RangeExtensions(func(xt protoreflect.ExtensionType) bool {
			n++
			xd := xt.TypeDescriptor()
			_, err := stream.FileContainingExtension(xd.ContainingMessage().FullName(), xd.Number())
			wantNotFound(t, fmt.Sprintf("FileContainingExtension(%s, %d)", xd.ContainingMessage().FullName(), xd.Number()), err)
			if !served[xd.ContainingMessage().ParentFile().Path()] {
				_, err = stream.AllExtensionNumbers(xd.ContainingMessage().FullName())
				wantNotFound(t, "AllExtensionNumbers("+string(xd.ContainingMessage().FullName())+")", err)
			}
			return true
		})
		if n == 0 {
			t.Fatal("no extension is linked into the test binary")
		}
		// A served message has no extensions, and is known.
		nums, err := stream.AllExtensionNumbers("acme.storefront.v1.Product")
		if err != nil || len(nums) != 0 {
			t.Errorf("AllExtensionNumbers(acme.storefront.v1.Product) = %v, %v; want none", nums, err)
		}
	})
}

// TestReflectionMountAfterNew mounts services after New: reflection, set up
// by New, describes the one mounted, and not those whose Mount failed.
func TestReflectionMountAfterNew(t *testing.T) {
	t.Parallel()
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	srv, err := server.New(
		server.WithService(productService(newFakeProducts())),
		// Takes SessionService's routes: mounting it fails.
		server.WithHandler("/custodian.v1.SessionService/", nop),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Mount(server.Service{Register: func(s *connect.Server) {
		custodianv1connect.RegisterSessionServiceHandler(s, custodianv1connect.UnimplementedSessionServiceHandler{})
	}}); err == nil {
		t.Fatal("Mount of a service whose routes are taken succeeded")
	}
	if err := srv.Mount(server.Service{Register: func(s *connect.Server) {
		storefrontv1connect.RegisterAccountServiceHandler(s, storefrontv1connect.UnimplementedAccountServiceHandler{})
	}}); err != nil {
		t.Fatalf("Mount(AccountService): %v", err)
	}
	// A service without a protobuf schema is listed, not described.
	const opaque = "test.v1.OpaqueService"
	if err := srv.Mount(server.Service{Register: func(s *connect.Server) {
		s.Register(connect.Method{
			Spec: connect.Spec{StreamType: connect.StreamTypeUnary, Procedure: "/" + opaque + "/Do"},
			Handler: func(context.Context, connect.Spec, connect.ServerStream) error {
				return connect.NewError(connect.CodeUnimplemented, "")
			},
		})
	}}); err != nil {
		t.Fatalf("Mount(%s): %v", opaque, err)
	}
	// A schema that declares a public name again is refused.
	dup, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("test/dup.proto"),
		Package:     proto.String("acme.storefront.v1"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Product")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("DupService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name:       proto.String("Do"),
				InputType:  proto.String(".acme.storefront.v1.Product"),
				OutputType: proto.String(".acme.storefront.v1.Product"),
			}},
		}},
	}, new(protoregistry.Files))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Mount(server.Service{Register: func(s *connect.Server) {
		s.Register(connect.Method{
			Spec: connect.Spec{
				StreamType: connect.StreamTypeUnary,
				Procedure:  "/acme.storefront.v1.DupService/Do",
				Schema:     dup.Services().Get(0).Methods().Get(0),
			},
			Handler: func(context.Context, connect.Spec, connect.ServerStream) error { return nil },
		})
	}}); err == nil || !strings.Contains(err.Error(), "acme.storefront.v1.Product") {
		t.Errorf("Mount of a schema that declares acme.storefront.v1.Product again: %v, want an error naming it", err)
	}
	stream := reflectionStream(t, serve(t, srv))

	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	want := []protoreflect.FullName{healthServiceName, storefrontv1connect.ProductServiceName, storefrontv1connect.AccountServiceName, opaque}
	if !slices.Equal(names, want) {
		t.Errorf("ListServices = %v, want %v", names, want)
	}
	for _, symbol := range []protoreflect.FullName{
		storefrontv1connect.AccountServiceName,
		"acme.storefront.v1.AccountService.GetDashboard",
		"acme.storefront.v1.GetDashboardResponse",
	} {
		files, err := stream.FileContainingSymbol(symbol)
		if err != nil {
			t.Errorf("FileContainingSymbol(%s) of a service mounted after New: %v", symbol, err)
			continue
		}
		if got := files[0].GetName(); got != "acme/storefront/v1/account.proto" {
			t.Errorf("FileContainingSymbol(%s) = %s", symbol, got)
		}
	}
	for _, symbol := range []protoreflect.FullName{custodianv1connect.SessionServiceName, opaque, "acme.storefront.v1.DupService"} {
		_, err := stream.FileContainingSymbol(symbol)
		wantNotFound(t, "FileContainingSymbol("+string(symbol)+")", err)
	}
	_, err = stream.FileByFilename("custodian/v1/session.proto")
	wantNotFound(t, "FileByFilename(custodian/v1/session.proto) after a failed Mount", err)
}
