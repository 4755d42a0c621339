package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// benchPath is one thing measured: a Connect GET (?encoding=json&message=)
// that wrk sends again and again.
type benchPath struct {
	// Key names it in --paths.
	Key string
	// Label names it in the table.
	Label string
	// Procedure is the method called, /package.Service/Method.
	Procedure string
	// Message is the request, protobuf JSON.
	Message string
	// Session: the call carries alice's session cookie (and X-CSRF, which
	// a Connect GET with the cookie needs).
	Session bool
	// Route: a config-only route of examples/routes, present with --routes.
	Route bool
	// Floor: the orders backend called directly with alice's bearer token,
	// without the gateway: the cheapest call there is, for scale. The CPU
	// reported is then custodian-demo's, where the backend runs.
	Floor bool
	// LibraryFloor: the call made to benchfloor (scripts/bench/floor) in
	// its own process, with alice's bearer token, instead of the gateway:
	// the least a Connect gateway on the same libraries does for it. The
	// CPU reported is the floor process's.
	LibraryFloor bool
	// Check says whether a first answer looks right.
	Check func(body []byte) error
}

// paths are every path, in the order each round runs them.
var paths = []benchPath{
	{
		Key: "order", Label: "GetOrder (pass-through)",
		Procedure: "/acme.storefront.v1.AccountService/GetOrder", Message: `{"orderId":"o-1001"}`,
		Session: true, Check: contains(`"o-1001"`),
	},
	{
		Key: "dashboard", Label: "GetDashboard (aggregate)",
		Procedure: "/acme.storefront.v1.AccountService/GetDashboard", Message: `{}`,
		Session: true, Check: contains(`"Alice Martin"`),
	},
	{
		Key: "products", Label: "ListProducts (anonymous)",
		Procedure: "/acme.storefront.v1.ProductService/ListProducts", Message: `{}`,
		Check: someProducts,
	},
	{
		Key: "session", Label: "GetSession",
		Procedure: "/custodian.v1.SessionService/GetSession", Message: `{}`,
		Session: true, Check: signedIn,
	},
	{
		Key: "route", Label: "route ShopService/GetOrder",
		Procedure: "/web.shop.v1.ShopService/GetOrder", Message: `{"orderId":"o-1001"}`,
		Session: true, Route: true, Check: contains(`"o-1001"`),
	},
	{
		Key: "libfloor", Label: "library floor: connect-go GetOrder",
		Procedure: "/acme.storefront.v1.AccountService/GetOrder", Message: `{"orderId":"o-1001"}`,
		LibraryFloor: true, Check: contains(`"o-1001"`),
	},
	{
		Key: "libdash", Label: "library floor: connect-go GetDashboard",
		Procedure: "/acme.storefront.v1.AccountService/GetDashboard", Message: `{}`,
		LibraryFloor: true, Check: contains(`"Alice Martin"`),
	},
	{
		Key: "libsession", Label: "library floor: connect-go GetSession",
		Procedure: "/custodian.v1.SessionService/GetSession", Message: `{}`,
		LibraryFloor: true, Check: signedIn,
	},
	{
		Key: "floor", Label: "floor: orders backend direct",
		Procedure: "/acme.orders.v1.OrderService/GetOrder", Message: `{"orderId":"o-1001"}`,
		Floor: true, Check: contains(`"o-1001"`),
	},
}

// pathKeys returns every path's key, in order.
func pathKeys() []string {
	keys := make([]string, len(paths))
	for i, p := range paths {
		keys[i] = p.Key
	}
	return keys
}

func pathByKey(key string) (benchPath, bool) {
	for _, p := range paths {
		if p.Key == key {
			return p, true
		}
	}
	return benchPath{}, false
}

// target returns the URL and the headers of p's requests in w, and the
// process whose CPU pays for them.
func (p benchPath) target(ctx context.Context, w *world) (target string, headers []string, cpu *process, err error) {
	base, cpu := w.listen, w.gateway
	query := url.Values{"encoding": {"json"}, "message": {p.Message}}
	switch {
	case p.LibraryFloor:
		token, err := w.libfloorToken.get(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		if base, err = w.startLibraryFloor(ctx); err != nil {
			return "", nil, nil, err
		}
		headers = []string{"Authorization: Bearer " + token}
		cpu = w.libfloor
	case p.Floor:
		if base, _, err = w.config.backend("orders"); err != nil {
			return "", nil, nil, err
		}
		token, err := w.floor.get(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		query.Set("connect", "v1")
		headers = []string{"Authorization: Bearer " + token}
		cpu = w.demo
	case p.Session:
		headers = []string{"Cookie: " + sessionCookie + "=" + w.cookie, "X-CSRF: 1"}
	}
	return base + p.Procedure + "?" + query.Encode(), headers, cpu, nil
}

// checkClient makes first calls as wrk makes its calls: without
// Accept-Encoding (which Go's transport would add), so that a canned
// backend records, at the first call, the very answers wrk's calls need.
var checkClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// firstAnswer makes one call as wrk will and checks its answer.
func (p benchPath) firstAnswer(ctx context.Context, target string, headers []string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	res, err := checkClient.Do(req)
	if err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("first call: %s: %.300s", res.Status, body)
	}
	if err := p.Check(body); err != nil {
		return fmt.Errorf("first answer: %w: %.300s", err, body)
	}
	return nil
}

// contains checks that an answer holds want.
func contains(want string) func([]byte) error {
	return func(body []byte) error {
		if !bytes.Contains(body, []byte(want)) {
			return fmt.Errorf("no %s in it", want)
		}
		return nil
	}
}

// someProducts checks that an answer lists products.
func someProducts(body []byte) error {
	var res struct {
		Products []json.RawMessage `json:"products"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return err
	}
	if len(res.Products) == 0 {
		return errors.New("no products")
	}
	return nil
}

// signedIn checks that a GetSession answer is signed in.
func signedIn(body []byte) error {
	var res struct {
		SignedIn bool `json:"signedIn"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return err
	}
	if !res.SignedIn {
		return errors.New("not signed in")
	}
	return nil
}
