package storefront_test

// End-to-end tests of the page tokens browsers get: sealed by the gateway,
// bound to the listing and, for a user's orders, to the session; whatever
// else a browser presents is refused before any backend is called.

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// wantOpaque fails unless token shows nothing of the demo backends' page
// tokens: neither their base64 text nor, decoded, the listing and user they
// name.
func wantOpaque(t *testing.T, token string, names ...string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Errorf("page token %q is not base64url without padding: %v", token, err)
	}
	for _, name := range names {
		enc := base64.RawURLEncoding.EncodeToString([]byte(name))
		if strings.Contains(token, enc[:len(enc)-1]) || bytes.Contains(raw, []byte(name)) || bytes.Contains(raw, []byte(enc[:len(enc)-1])) {
			t.Errorf("page token %q shows the backend's %q", token, name)
		}
	}
}

// backendCallCounter returns a function that counts the demo backends'
// calls so far.
func backendCallCounter(e *gt.Env) func() int64 {
	return func() int64 {
		var n int64
		for _, be := range e.World.Backends.All() {
			n += be.Calls("")
		}
		return n
	}
}

// wantRefused fails unless err is invalid_argument naming page_token, as
// today's validation answers, with nothing of token in it.
func wantRefused(t *testing.T, what string, err error, token string) {
	t.Helper()
	if code := connect.CodeOf(err); code != connect.CodeInvalidArgument {
		t.Errorf("%s: %v, want invalid_argument", what, err)
	}
	if fields := gt.BadRequestFields(err); !slices.Equal(fields, []string{"page_token"}) {
		t.Errorf("%s: BadRequest fields %q, want [page_token]", what, fields)
	}
	if token != "" && strings.Contains(gt.ErrorText(err, nil), token) {
		t.Errorf("%s: the error repeats the token", what)
	}
}

// TestOrderPageTokensAreSealedToTheSession pages through alice's orders:
// the tokens she gets show nothing of the orders backend's own, take her
// through every page, and are refused for bob, for her own other session,
// for another listing and for another gateway, tampered or truncated,
// without any backend being called.
func TestOrderPageTokensAreSealedToTheSession(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	other := gt.NewDemoEnv(t) // another gateway, with session keys of its own
	alice := e.SignedIn(t, "alice")
	bob := e.SignedIn(t, "bob")
	aliceElsewhere := e.SignedIn(t, "alice") // her second session
	aliceOnOther := other.SignedIn(t, "alice")
	anonymous := e.Browser(t)
	calls := backendCallCounter(e)
	otherCalls := backendCallCounter(other)

	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			// alice has 12 orders: pages of 5, 5 and 2.
			var ids []string
			var tokens []string
			token := ""
			for range 10 {
				res, err := alice.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: token})
				if err != nil {
					t.Fatalf("ListOrders page %d: %v", len(tokens)+1, err)
				}
				for _, o := range res.GetOrders() {
					ids = append(ids, o.GetOrderId())
				}
				if token = res.GetNextPageToken(); token == "" {
					break
				}
				wantOpaque(t, token, "orders", "alice")
				tokens = append(tokens, token)
			}
			if len(tokens) != 2 || len(ids) != 12 {
				t.Fatalf("paged through %d orders with %d tokens, want 12 with 2", len(ids), len(tokens))
			}
			slices.Sort(ids)
			if len(slices.Compact(ids)) != 12 {
				t.Errorf("pages repeat orders: %v", ids)
			}

			first := tokens[0]
			products, err := anonymous.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name string
				call func(context.Context) error
			}{
				{"bob with alice's token", func(ctx context.Context) error {
					_, err := bob.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: first})
					return err
				}},
				{"alice's token in her other session", func(ctx context.Context) error {
					_, err := aliceElsewhere.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: first})
					return err
				}},
				{"tampered", func(ctx context.Context) error {
					_, err := alice.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: gt.Flip(first)})
					return err
				}},
				{"truncated", func(ctx context.Context) error {
					_, err := alice.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: first[:len(first)-4]})
					return err
				}},
				{"a products token for orders", func(ctx context.Context) error {
					_, err := alice.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: products.GetNextPageToken()})
					return err
				}},
				{"an orders token for products", func(ctx context.Context) error {
					_, err := alice.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 5, PageToken: first})
					return err
				}},
			}
			for _, c := range cases {
				before := calls()
				wantRefused(t, c.name, c.call(ctx), first)
				if n := calls() - before; n != 0 {
					t.Errorf("%s: %d backend calls, want none", c.name, n)
				}
			}

			// The same user on another gateway: its keys do not open it.
			before := otherCalls()
			_, err = aliceOnOther.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: first})
			wantRefused(t, "alice's token on another gateway", err, first)
			if n := otherCalls() - before; n != 0 {
				t.Errorf("alice's token on another gateway: %d backend calls, want none", n)
			}

			// The token still works for alice after all this.
			res, err := alice.Account(p).ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 5, PageToken: first})
			if err != nil || len(res.GetOrders()) != 5 {
				t.Errorf("alice's own token, again: %d orders, %v", len(res.GetOrders()), err)
			}
		})
	}
}

// TestProductPageTokensAreSealed pages through the public catalog without
// a session: the tokens show nothing of the catalog's own, work for any
// caller, and are refused for another category or another gateway.
func TestProductPageTokensAreSealed(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	other := gt.NewDemoEnv(t)
	calls := backendCallCounter(e)
	otherCalls := backendCallCounter(other)
	anonymous, stranger := e.Browser(t), e.Browser(t)
	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			seen := map[string]bool{}
			token, pages := "", 0
			for {
				res, err := anonymous.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 7, PageToken: token})
				if err != nil {
					t.Fatalf("ListProducts page %d: %v", pages+1, err)
				}
				pages++
				for _, pr := range res.GetProducts() {
					if seen[pr.GetProductId()] {
						t.Errorf("product %s on two pages", pr.GetProductId())
					}
					seen[pr.GetProductId()] = true
				}
				if token = res.GetNextPageToken(); token == "" || pages > 10 {
					break
				}
				wantOpaque(t, token, "products")
			}
			if pages != 4 || len(seen) != 24 {
				t.Errorf("%d products on %d pages, want 24 on 4", len(seen), pages)
			}

			books, err := anonymous.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 2, Category: "books"})
			if err != nil || books.GetNextPageToken() == "" {
				t.Fatalf("books: %v, %v", books, err)
			}
			wantOpaque(t, books.GetNextPageToken(), "products", "books")
			// Another caller may use it: the catalog is public.
			next, err := stranger.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 2, Category: "books", PageToken: books.GetNextPageToken()})
			if err != nil || len(next.GetProducts()) != 2 || next.GetProducts()[0].GetProductId() == books.GetProducts()[0].GetProductId() {
				t.Errorf("books page 2 for another caller: %v, %v", next, err)
			}

			before := calls()
			_, err = stranger.Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 2, Category: "games", PageToken: books.GetNextPageToken()})
			wantRefused(t, "a books token for games", err, books.GetNextPageToken())
			if n := calls() - before; n != 0 {
				t.Errorf("a books token for games: %d backend calls, want none", n)
			}
			before = otherCalls()
			_, err = other.Browser(t).Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 2, Category: "books", PageToken: books.GetNextPageToken()})
			wantRefused(t, "a token of another gateway", err, books.GetNextPageToken())
			if n := otherCalls() - before; n != 0 {
				t.Errorf("a token of another gateway: %d backend calls, want none", n)
			}
		})
	}
}
