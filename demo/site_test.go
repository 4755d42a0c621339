package demo_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/demo"
	"github.com/custodian-bff/custodian/demo/backends"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

const createOrder = "/acme.orders.v1.OrderService/CreateOrder"

// lateSite serves the site once it exists: the site needs the gateway's
// address, the gateway its routes.
type lateSite struct{ atomic.Pointer[demo.Site] }

func (l *lateSite) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.Load().ServeHTTP(w, r) }

// newSiteEnv starts a demo gateway serving the store, with spans recorded
// as cmd/custodian records them.
func newSiteEnv(t *testing.T) *gt.Env {
	t.Helper()
	recorder := demo.NewSpanRecorder()
	probe, err := demo.NewSite(demo.SiteConfig{API: "http://127.0.0.1:1", PublicURL: "http://localhost:1"})
	if err != nil {
		t.Fatal(err)
	}
	late := &lateSite{}
	opts := []gt.Option{
		gt.WithGatewayOption(custodian.WithSpanProcessor(recorder)),
	}
	for _, p := range probe.Patterns() {
		opts = append(opts, gt.WithHandler(p, late))
	}
	e := gt.NewDemoEnv(t, opts...)
	site, err := demo.NewSite(demo.SiteConfig{API: e.Listen, PublicURL: e.Public, Backends: e.World.Backends, Spans: recorder})
	if err != nil {
		t.Fatal(err)
	}
	site.SetLogger(e.Gateway.Logger())
	t.Cleanup(site.Close)
	late.Store(site)
	return e
}

// post sends a form as a browser on origin would (origin "" sends no
// Origin header); site is the Sec-Fetch-Site value, "" for none.
func post(t *testing.T, b *gt.Browser, rawURL string, form url.Values, origin, site string) gt.Hop {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	return b.Do(t, req)
}

// wantClean fails when a page shows a secret or an internal detail.
func wantClean(t *testing.T, what string, h gt.Hop, b *gt.Browser) {
	t.Helper()
	if c := b.Cookie(gt.SessionCookie); c != "" && strings.Contains(h.Body, c) {
		t.Errorf("%s: the page shows the session cookie's value", what)
	}
	// The backends' own schemas (acme.orders.v1 and the others) stay
	// hidden, as in every answer of the gateway; the store's public one,
	// acme.storefront.v1, may show.
	for _, bad := range []string{".acme.internal", "eyJ", "Bearer", "acct-", "panic", "goroutine", "acme.orders.", "acme.profiles.", "acme.loyalty.", "acme.catalog."} {
		if strings.Contains(h.Body, bad) {
			t.Errorf("%s: the page shows %q", what, bad)
		}
	}
	if h.Status >= 500 && h.Status != http.StatusServiceUnavailable && h.Status != http.StatusGatewayTimeout {
		t.Errorf("%s: status %d", what, h.Status)
	}
}

var nextLink = regexp.MustCompile(`id="next" href="([^"]+)"`)

func TestSiteAnonymous(t *testing.T) {
	t.Parallel()
	e := newSiteEnv(t)
	b := e.Browser(t)

	home := b.Get(t, e.Public+"/")
	wantClean(t, "home", home, b)
	if home.Status != http.StatusOK || !strings.Contains(home.Body, `<p id="who">Not signed in.</p>`) ||
		!strings.Contains(home.Body, `id="login" href="/auth/login?return_to=%2F"`) {
		t.Fatalf("anonymous home: status %d\n%s", home.Status, home.Body)
	}
	if !strings.Contains(home.Body, `id="waterfall"`) || !strings.Contains(home.Body, "ProductService/ListProducts") {
		t.Errorf("anonymous home: no waterfall of ListProducts:\n%s", home.Body)
	}

	first := b.Get(t, e.Public+"/products")
	wantClean(t, "products", first, b)
	m := nextLink.FindStringSubmatch(first.Body)
	if first.Status != http.StatusOK || m == nil || strings.Contains(first.Body, `action="/orders"`) {
		t.Fatalf("products: status %d, next link %v, or order buttons for an anonymous visitor\n%s", first.Status, m, first.Body)
	}
	second := b.Get(t, e.Public+strings.ReplaceAll(m[1], "&amp;", "&"))
	wantClean(t, "products page 2", second, b)
	if second.Status != http.StatusOK || !strings.Contains(second.Body, `id="first"`) || second.Body == first.Body {
		t.Errorf("products page 2: status %d\n%s", second.Status, second.Body)
	}

	for path, want := range map[string]int{
		"/products?page=not-a-token":                  http.StatusBadRequest,
		"/products?page=" + strings.Repeat("A", 3000): http.StatusBadRequest,
		"/nowhere": http.StatusNotFound,
	} {
		h := b.Get(t, e.Public+path)
		wantClean(t, path, h, b)
		if h.Status != want {
			t.Errorf("GET %s: status %d, want %d", path, h.Status, want)
		}
	}
	// Pages of the account send a visitor to sign in, coming back.
	for path, returnTo := range map[string]string{"/orders": "%2Forders", "/orders/o-1001": "%2Forders%2Fo-1001", "/profile": "%2Fprofile"} {
		h := b.Get(t, e.Public+path)
		if h.Status != http.StatusSeeOther || h.Header.Get("Location") != "/auth/login?return_to="+returnTo {
			t.Errorf("GET %s signed out: status %d, Location %q", path, h.Status, h.Header.Get("Location"))
		}
	}
	// A form posted without a session gets a sign-in link, not an error.
	h := post(t, b, e.Public+"/profile", url.Values{"display_name": {"X"}}, e.Public, "same-origin")
	if h.Status != http.StatusUnauthorized || !strings.Contains(h.Body, `id="signin"`) {
		t.Errorf("POST /profile signed out: status %d\n%s", h.Status, h.Body)
	}
}

func TestSiteSignedIn(t *testing.T) {
	t.Parallel()
	e := newSiteEnv(t)
	b := e.SignedIn(t, "alice")

	home := b.Get(t, e.Public+"/")
	wantClean(t, "dashboard", home, b)
	for _, want := range []string{`<p id="who">Signed in as <strong>Alice Liddell</strong>`, `id="logout" href="/auth/logout?id=`, `id="dashboard"`, "Alice Martin", `id="points"`, `id="recent-orders"`, `id="waterfall"`, "AccountService/GetDashboard", "SessionService/GetSession"} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("dashboard does not show %q", want)
		}
	}
	if home.Status != http.StatusOK || strings.Contains(home.Body, `id="missing"`) || strings.Contains(home.Body, "no trace recorded") {
		t.Fatalf("dashboard: status %d\n%s", home.Status, home.Body)
	}
	// The waterfall shows the first visit's token exchange and catalog
	// miss, and the next visit's cache hits instead.
	for _, want := range []string{"custodian.token_exchange", "BatchGetProducts", "cache=miss · cache name=catalog_products"} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("the first dashboard's waterfall does not show %q", want)
		}
	}
	second := b.Get(t, e.Public+"/")
	for _, want := range []string{"cache=hit · cache name=exchanged_token", "cache=hit · cache name=catalog_products"} {
		if !strings.Contains(second.Body, want) {
			t.Errorf("the second dashboard's waterfall does not show %q", want)
		}
	}
	for _, unwanted := range []string{"custodian.token_exchange", "BatchGetProducts"} {
		if strings.Contains(second.Body, unwanted) {
			t.Errorf("the second dashboard's waterfall shows %q", unwanted)
		}
	}

	orders := b.Get(t, e.Public+"/orders")
	wantClean(t, "orders", orders, b)
	m := nextLink.FindStringSubmatch(orders.Body)
	if orders.Status != http.StatusOK || m == nil || strings.Count(orders.Body, `<tr class="order"`) != 5 {
		t.Fatalf("orders: status %d\n%s", orders.Status, orders.Body)
	}
	page2 := b.Get(t, e.Public+strings.ReplaceAll(m[1], "&amp;", "&"))
	if page2.Status != http.StatusOK || strings.Count(page2.Body, `<tr class="order"`) != 5 {
		t.Errorf("orders page 2: status %d\n%s", page2.Status, page2.Body)
	}
	// Another session's page token is refused, as a bad request.
	bob := e.SignedIn(t, "bob")
	if h := bob.Get(t, e.Public+strings.ReplaceAll(m[1], "&amp;", "&")); h.Status != http.StatusBadRequest {
		t.Errorf("alice's page token in bob's session: status %d", h.Status)
	}

	detail := b.Get(t, e.Public+"/orders/o-1001")
	wantClean(t, "order", detail, b)
	if detail.Status != http.StatusOK || !strings.Contains(detail.Body, `id="order-id">o-1001<`) {
		t.Errorf("order detail: status %d\n%s", detail.Status, detail.Body)
	}
	for _, path := range []string{"/orders/o-99999", "/orders/..%2f..%2fetc", "/orders/" + strings.Repeat("x", 100)} {
		h := b.Get(t, e.Public+path)
		wantClean(t, path, h, b)
		if h.Status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, h.Status)
		}
	}
	// Bob cannot see alice's order.
	if h := bob.Get(t, e.Public+"/orders/o-1001"); h.Status != http.StatusNotFound {
		t.Errorf("bob's view of alice's order: status %d", h.Status)
	}

	// Place an order from the products page's form, twice with one key.
	products := b.Get(t, e.Public+"/products")
	key := regexp.MustCompile(`name="product_id" value="(p-0001)"><input type="hidden" name="key" value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(products.Body)
	if key == nil {
		t.Fatalf("no order form for p-0001:\n%s", products.Body)
	}
	form := url.Values{"product_id": {key[1]}, "key": {key[2]}, "quantity": {"2"}}
	before := e.World.Backends.Orders.Calls(createOrder)
	placed := post(t, b, e.Public+"/orders", form, e.Public, "same-origin")
	wantClean(t, "order placed", placed, b)
	if placed.Status != http.StatusOK || !strings.Contains(placed.Body, `id="notice"`) || !strings.Contains(placed.Body, "AccountService/PlaceOrder") {
		t.Fatalf("placing an order: status %d\n%s", placed.Status, placed.Body)
	}
	again := post(t, b, e.Public+"/orders", form, e.Public, "same-origin")
	id := regexp.MustCompile(`id="order-id">([^<]+)<`)
	if got, want := id.FindStringSubmatch(again.Body), id.FindStringSubmatch(placed.Body); got == nil || want == nil || got[1] != want[1] {
		t.Errorf("the same form sent twice placed %v and %v", want, got)
	}
	if first := b.Get(t, e.Public+"/orders"); !strings.Contains(first.Body, id.FindStringSubmatch(placed.Body)[1]) {
		t.Errorf("the new order is not on the first page of orders")
	}
	if n := e.World.Backends.Orders.Calls(createOrder) - before; n != 2 {
		t.Errorf("%d CreateOrder calls, want 2 (one order, retried)", n)
	}

	// Edit the profile.
	saved := post(t, b, e.Public+"/profile", url.Values{"display_name": {"Alice <b>M</b>"}, "locale": {"fr-FR"}, "marketing": {"on"}}, e.Public, "")
	wantClean(t, "profile saved", saved, b)
	if saved.Status != http.StatusOK || !strings.Contains(saved.Body, `id="profile-name">Alice &lt;b&gt;M&lt;/b&gt;<`) {
		t.Errorf("saving the profile: status %d\n%s", saved.Status, saved.Body)
	}
	if h := b.Get(t, e.Public+"/profile"); !strings.Contains(h.Body, `value="fr-FR"`) || !strings.Contains(h.Body, "checked") {
		t.Errorf("the profile page does not show what was saved:\n%s", h.Body)
	}

	// Bad form values get a friendly 400, and nothing reaches the backend.
	before = e.World.Backends.Orders.Calls(createOrder)
	for name, f := range map[string]url.Values{
		"quantity not a number": {"product_id": {"p-0001"}, "key": {"abcdefgh12"}, "quantity": {"two"}},
		"quantity too large":    {"product_id": {"p-0001"}, "key": {"abcdefgh12"}, "quantity": {"100"}},
		"bad product":           {"product_id": {"../x"}, "key": {"abcdefgh12"}, "quantity": {"1"}},
		"no key":                {"product_id": {"p-0001"}, "quantity": {"1"}},
	} {
		h := post(t, b, e.Public+"/orders", f, e.Public, "same-origin")
		wantClean(t, name, h, b)
		if h.Status != http.StatusBadRequest || !strings.Contains(h.Body, `id="error"`) {
			t.Errorf("%s: status %d", name, h.Status)
		}
	}
	for name, f := range map[string]url.Values{
		"empty name": {"display_name": {"  "}},
		"long name":  {"display_name": {strings.Repeat("n", 65)}},
		"bad locale": {"display_name": {"A"}, "locale": {"en_GB; drop"}},
		"bad utf8":   {"display_name": {"\xff"}},
	} {
		if h := post(t, b, e.Public+"/profile", f, e.Public, "same-origin"); h.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, h.Status)
		}
	}
	if n := e.World.Backends.Orders.Calls(createOrder) - before; n != 0 {
		t.Errorf("%d CreateOrder calls for bad forms", n)
	}
}

// TestSiteRefusesCrossSitePosts posts every form of the store as a page
// of another site would, with alice's cookie: all are refused and nothing
// changes.
func TestSiteRefusesCrossSitePosts(t *testing.T) {
	t.Parallel()
	e := newSiteEnv(t)
	b := e.SignedIn(t, "alice")
	forms := map[string]url.Values{
		"/orders":      {"product_id": {"p-0001"}, "key": {"attacker-key-1"}, "quantity": {"1"}},
		"/profile":     {"display_name": {"Pwned"}},
		"/demo/faults": {"backend": {"loyalty"}, "mode": {"failing"}, "return": {"/"}},
	}
	attacks := []struct{ name, origin, site string }{
		{"another origin", "https://evil.example", "cross-site"},
		{"another origin, no Sec-Fetch-Site", "https://evil.example", ""},
		{"a sibling port", "http://localhost:1", "same-site"},
		{"the listen address", e.Listen, "same-site"},
		{"null origin", "null", ""},
		{"no origin, cross-site", "", "cross-site"},
		{"no origin, same-site", "", "same-site"},
		{"no origin, no Sec-Fetch-Site", "", ""},
		{"right origin, wrong Sec-Fetch-Site", e.Public, "cross-site"},
	}
	before := e.World.Backends.Orders.Calls(createOrder)
	for path, form := range forms {
		for _, a := range attacks {
			h := post(t, b, e.Public+path, form, a.origin, a.site)
			wantClean(t, path+" from "+a.name, h, b)
			if h.Status != http.StatusForbidden {
				t.Errorf("POST %s from %s: status %d, want 403", path, a.name, h.Status)
			}
		}
	}
	if n := e.World.Backends.Orders.Calls(createOrder) - before; n != 0 {
		t.Errorf("%d orders placed by cross-site posts", n)
	}
	if f := e.World.Backends.Loyalty.Fault(); f != (backends.Fault{}) {
		t.Errorf("a cross-site post set the loyalty fault: %+v", f)
	}
	if h := b.Get(t, e.Public+"/profile"); strings.Contains(h.Body, "Pwned") {
		t.Error("a cross-site post changed the profile")
	}
	// The same forms from the store's own pages work.
	if h := post(t, b, e.Public+"/demo/faults", forms["/demo/faults"], e.Public, "same-origin"); h.Status != http.StatusSeeOther || h.Header.Get("Location") != "/" {
		t.Errorf("fault button: status %d, Location %q", h.Status, h.Header.Get("Location"))
	}
	if f := e.World.Backends.Loyalty.Fault(); f.Code != connect.CodeUnavailable {
		t.Errorf("the fault button did not set the fault: %+v", f)
	}
}

// TestSiteShowsPartialAnswers makes backends fail with the fault buttons
// and checks that the pages say what is missing, with no backend text.
func TestSiteShowsPartialAnswers(t *testing.T) {
	t.Parallel()
	e := newSiteEnv(t)
	b := e.SignedIn(t, "alice")
	setFault := func(backend, mode, back string) {
		t.Helper()
		h := post(t, b, e.Public+"/demo/faults", url.Values{"backend": {backend}, "mode": {mode}, "return": {back}}, e.Public, "same-origin")
		if h.Status != http.StatusSeeOther || h.Header.Get("Location") != back {
			t.Fatalf("setting %s %s: status %d, Location %q", backend, mode, h.Status, h.Header.Get("Location"))
		}
	}
	setFault("loyalty", "failing", "/orders?page=x")
	home := b.Get(t, e.Public+"/")
	wantClean(t, "dashboard without loyalty", home, b)
	for _, want := range []string{`id="missing"`, "your loyalty points", `id="loyalty-missing"`, `id="recent-orders"`, `id="fault-loyalty"><th>loyalty</th><td class="state" data-mode="failing">`} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("dashboard without loyalty does not show %q", want)
		}
	}
	if home.Status != http.StatusOK {
		t.Errorf("dashboard without loyalty: status %d", home.Status)
	}
	// Enough failures open loyalty's circuit breaker: the waterfall shows
	// the call it refused.
	const refused = "GetAccount</span> <span class=\"attrs\">backend=loyalty · code=UNAVAILABLE · breaker=open"
	opened := false
	for range 8 {
		if h := b.Get(t, e.Public+"/"); strings.Contains(h.Body, refused) {
			opened = true
			break
		}
	}
	if !opened {
		t.Errorf("no dashboard's waterfall shows %q", refused)
	}

	setFault("profiles", "failing", "/")
	h := b.Get(t, e.Public+"/")
	wantClean(t, "dashboard without profiles", h, b)
	if h.Status != http.StatusServiceUnavailable || !strings.Contains(h.Body, `id="error-code">unavailable<`) {
		t.Errorf("dashboard without its required profile: status %d\n%s", h.Status, h.Body)
	}
	setFault("profiles", "normal", "/")
	setFault("loyalty", "slow", "/")
	start := time.Now()
	h = b.Get(t, e.Public+"/")
	wantClean(t, "dashboard with slow loyalty", h, b)
	if h.Status != http.StatusOK || !strings.Contains(h.Body, `data-mode="slow"`) || time.Since(start) > 5*time.Second {
		t.Errorf("dashboard with slow loyalty: status %d after %v", h.Status, time.Since(start))
	}
	// Unknown backends and modes, and returns to other sites.
	for name, f := range map[string]url.Values{
		"unknown backend": {"backend": {"billing"}, "mode": {"failing"}},
		"unknown mode":    {"backend": {"loyalty"}, "mode": {"explode"}},
	} {
		if h := post(t, b, e.Public+"/demo/faults", f, e.Public, "same-origin"); h.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, h.Status)
		}
	}
	for _, back := range []string{"https://evil.example/", "//evil.example/", `/\evil.example`, "javascript:alert(1)", ""} {
		h := post(t, b, e.Public+"/demo/faults", url.Values{"backend": {"loyalty"}, "mode": {"normal"}, "return": {back}}, e.Public, "same-origin")
		if loc := h.Header.Get("Location"); h.Status != http.StatusSeeOther || loc != "/" {
			t.Errorf("return %q: status %d, Location %q", back, h.Status, loc)
		}
	}
}
