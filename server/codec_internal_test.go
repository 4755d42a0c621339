package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
)

// nestedGroups returns n unknown groups (field 99), each inside the last.
func nestedGroups(n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, 99, protowire.StartGroupType)
	}
	for range n {
		b = protowire.AppendTag(b, 99, protowire.EndGroupType)
	}
	return b
}

func TestProtoCodecNestingCountsUnknownGroups(t *testing.T) {
	t.Parallel()
	// A profile (field 1 of GetDashboardResponse) holding groups: one
	// level of message nesting more.
	inProfile := func(n int) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), nestedGroups(n))
	}
	lengthDelimited := func(n int) []byte {
		var b []byte
		for range n {
			b = protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), b)
		}
		return b
	}
	cases := []struct {
		name    string
		data    []byte
		refused bool
	}{
		{"groups at the limit", nestedGroups(maxNesting), false},
		{"groups one over the limit", nestedGroups(maxNesting + 1), true},
		{"100 groups", nestedGroups(100), true},
		{"9999 groups", nestedGroups(9999), true},
		{"groups at the limit in a field", inProfile(maxNesting - 1), false},
		{"groups over the limit in a field", inProfile(maxNesting), true},
		// Unknown length-delimited fields are opaque bytes: never parsed,
		// they cost no recursion and are kept as they are.
		{"100 nested unknown bytes fields", lengthDelimited(100), false},
	}
	binary := connectproto.NewBinaryCodec()
	binary.UnmarshalOptions.RecursionLimit = maxNesting
	codec := protoCodec{binary}
	for _, c := range cases {
		err := codec.UnmarshalRead(t.Context(), bytes.NewReader(c.data), &storefrontv1.GetDashboardResponse{})
		if c.refused != (err != nil) {
			t.Errorf("%s: Unmarshal: %v, want refused %v", c.name, err, c.refused)
		}
		if c.refused && !errors.Is(err, errTooDeep) {
			t.Errorf("%s: Unmarshal: %v, want %v", c.name, err, errTooDeep)
		}
	}
}

const valueProcedure = "/custodian.test.Echo/Value"

type echoProducts struct {
	storefrontv1connect.UnimplementedProductServiceHandler
}

func (echoProducts) GetProduct(_ context.Context, req *storefrontv1.GetProductRequest) (*storefrontv1.GetProductResponse, error) {
	return &storefrontv1.GetProductResponse{Product: &storefrontv1.Product{ProductId: req.GetProductId()}}, nil
}

// TestServedCodecs checks the codecs the server mounts, over HTTP: binary
// requests with unknown groups nested too deeply are refused, JSON requests
// drop unknown fields (with or without a charset) but not their nesting.
func TestServedCodecs(t *testing.T) {
	t.Parallel()
	s, err := New(WithService(Service{Register: func(srv *connect.Server) {
		storefrontv1connect.RegisterProductServiceHandler(srv, echoProducts{})
		// No request of the gateway nests known fields deeply:
		// google.protobuf.Value does.
		srv.Register(connect.Method{
			Spec: connect.Spec{StreamType: connect.StreamTypeUnary, Procedure: valueProcedure},
			Handler: func(_ context.Context, _ connect.Spec, stream connect.ServerStream) error {
				var v structpb.Value
				if err := stream.Receive(&v); err != nil {
					return err
				}
				return stream.Send(&v)
			},
		})
	}}))
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)

	request, err := proto.Marshal(&storefrontv1.GetProductRequest{ProductId: "p-1"})
	if err != nil {
		t.Fatal(err)
	}
	// nestedJSON nests n arrays in an unknown field: with the request
	// message, n+1 levels.
	nestedJSON := func(n int) string {
		return `{"productId":"p-1","unknownField":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	}
	// nestedValue nests n lists: with the Value in each, 2n+1 messages.
	nestedValue := func(n int) []byte {
		v := structpb.NewStringValue("leaf")
		for range n {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		b, err := proto.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		contentType string
		body        []byte
		wantStatus  int
		procedure   string // default GetProduct
	}{
		{"binary", "application/proto", request, http.StatusOK, ""},
		{"binary nested to the limit", "application/proto", nestedValue((maxNesting - 1) / 2), http.StatusOK, valueProcedure},
		{"binary nested too deeply", "application/proto", nestedValue(maxNesting / 2), http.StatusBadRequest, valueProcedure},
		{"binary with unknown groups at the limit", "application/proto", append(slices.Clip(request), nestedGroups(maxNesting)...), http.StatusOK, ""},
		{"binary with unknown groups over the limit", "application/proto", append(slices.Clip(request), nestedGroups(maxNesting+1)...), http.StatusBadRequest, ""},
		{"binary with 9999 unknown groups", "application/proto", append(slices.Clip(request), nestedGroups(9999)...), http.StatusBadRequest, ""},
		{"JSON with an unknown field", "application/json", []byte(`{"productId":"p-1","unknownField":{"a":1}}`), http.StatusOK, ""},
		{"JSON with charset", "application/json; charset=utf-8", []byte(`{"productId":"p-1"}`), http.StatusOK, ""},
		{"JSON with an unknown field nested to the limit", "application/json", []byte(nestedJSON(maxNesting - 1)), http.StatusOK, ""},
		{"JSON with an unknown field nested too deeply", "application/json", []byte(nestedJSON(maxNesting)), http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			procedure := storefrontv1connect.ProductServiceGetProductProcedure
			if tt.procedure != "" {
				procedure = tt.procedure
			}
			res, err := front.Client().Post(front.URL+procedure, tt.contentType, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusBadRequest && !strings.Contains(string(body), `"invalid_argument"`) {
				t.Errorf("body %s, want code invalid_argument", body)
			}
		})
	}
}
