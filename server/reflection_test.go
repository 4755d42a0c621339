package server_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
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
