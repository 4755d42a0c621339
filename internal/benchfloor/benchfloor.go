// Package benchfloor is the least a Connect gateway built on Custodian's
// libraries does for AccountService/GetOrder: connect-go's handler decodes
// the call, one connect-go client call to the orders backend carries the
// caller's Authorization header, the order is copied field by field into
// the public message, and jsonenc writes a JSON answer. No session, CSRF,
// rate limit, request id, security headers, body limits, access log,
// trace context, breaker, timeout or catalog lookup. The benchmarks
// measure it beside the gateway, so that what Custodian adds is told apart
// from what net/http and connect-go cost.
package benchfloor

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/jsonenc"
)

// compressMinBytes is the gateway's: smaller answers are not compressed.
const compressMinBytes = 4 << 10

// NewHandler returns the floor's handler for GetOrder, calling the orders
// backend at ordersURL with httpClient and the transport options given
// (connecthttp.WithGRPC for a gRPC backend).
func NewHandler(httpClient *http.Client, ordersURL string, transport ...connecthttp.Option) http.Handler {
	srv := connect.NewServer()
	storefrontv1connect.RegisterAccountServiceHandler(srv, account{
		orders: ordersv1connect.NewOrderServiceClient(connect.NewClient(connecthttp.NewTransport(httpClient, ordersURL, transport...))),
	})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv,
		connecthttp.WithCodecs(jsonCodec{connectproto.NewJSONCodec()}, connectproto.NewBinaryCodec()),
		connecthttp.WithCompressMinBytes(compressMinBytes))
	return mux
}

// account answers GetOrder with one orders call and a copy.
type account struct {
	storefrontv1connect.UnimplementedAccountServiceHandler
	orders ordersv1connect.OrderServiceClient
}

func (a account) GetOrder(ctx context.Context, req *storefrontv1.GetOrderRequest) (*storefrontv1.GetOrderResponse, error) {
	var auth string
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		auth = info.RequestHeader().Get("Authorization")
	}
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", auth)
	res, err := a.orders.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: req.GetOrderId()})
	if err != nil {
		return nil, err
	}
	o := res.GetOrder()
	out := &storefrontv1.Order{
		OrderId:    o.GetOrderId(),
		Status:     storefrontv1.OrderStatus(o.GetStatus()),
		Total:      &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: o.GetTotalMinor()},
		CreateTime: o.GetCreateTime(),
		Lines:      make([]*storefrontv1.OrderLine, 0, len(o.GetLines())),
	}
	for _, l := range o.GetLines() {
		out.Lines = append(out.Lines, &storefrontv1.OrderLine{
			ProductId: l.GetProductId(),
			Quantity:  l.GetQuantity(),
			UnitPrice: &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: l.GetUnitPriceMinor()},
		})
	}
	return &storefrontv1.GetOrderResponse{Order: out}, nil
}

// jsonCodec writes answers with jsonenc, as the gateway's JSON codec does.
type jsonCodec struct{ *connectproto.JSONCodec }

func (c jsonCodec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return c.JSONCodec.MarshalWrite(ctx, dst, msg)
	}
	var buf []byte
	if ab, ok := dst.(interface{ AvailableBuffer() []byte }); ok {
		buf = ab.AvailableBuffer()
	}
	out, err := jsonenc.AppendMessage(buf, m)
	if errors.Is(err, jsonenc.ErrUnsupported) {
		return c.JSONCodec.MarshalWrite(ctx, dst, msg)
	}
	if err != nil {
		return err
	}
	_, err = dst.Write(out)
	return err
}
