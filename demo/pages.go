package demo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect/v2"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// Page sizes of the store's lists: small, so paging shows in the demo.
const (
	productPageSize  = 8
	orderPageSize    = 5
	featuredProducts = 4
	recentOrders     = 5
)

// home is the dashboard of a signed-in customer, and a storefront for
// anyone else.
func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Acme store", "home")
	sess, err := s.session(p)
	if err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	if !sess.GetSignedIn() {
		res, err := invoke(p, "ProductService/ListProducts", s.products.ListProducts, &storefrontv1.ListProductsRequest{PageSize: featuredProducts})
		if err != nil {
			s.failed(p, err)
		} else {
			p.data.Content = productsView{Products: productViews(res.GetProducts())}
		}
		s.render(w, p, "welcome")
		return
	}
	res, err := invoke(p, "AccountService/GetDashboard", s.account.GetDashboard, &storefrontv1.GetDashboardRequest{RecentOrderCount: recentOrders})
	if err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	p.data.Content = dashboardView{
		Profile: res.GetProfile(),
		Loyalty: loyaltyViewOf(res.GetLoyalty()),
		Orders:  orderViews(res.GetRecentOrders()),
		Missing: missingViews(res.GetMissingSections()),
	}
	s.render(w, p, "dashboard")
}

// productList is the public catalog, a page at a time.
func (s *Site) productList(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Products", "products")
	token := r.URL.Query().Get("page")
	res, sessErr, err := invokeBeside(s, p, "ProductService/ListProducts", s.products.ListProducts, &storefrontv1.ListProductsRequest{PageSize: productPageSize, PageToken: token})
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	v := productsView{Products: productViews(res.GetProducts()), Paged: token != "", SignedIn: p.data.Who.SignedIn}
	if next := res.GetNextPageToken(); next != "" {
		v.Next = "/products?page=" + url.QueryEscape(next)
	}
	if v.SignedIn {
		v.Key = newIdempotencyKey()
	}
	p.data.Content = v
	s.render(w, p, "products")
}

// orderList is the customer's orders, a page at a time.
func (s *Site) orderList(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Your orders", "orders")
	token := r.URL.Query().Get("page")
	res, sessErr, err := invokeBeside(s, p, "AccountService/ListOrders", s.account.ListOrders, &storefrontv1.ListOrdersRequest{PageSize: orderPageSize, PageToken: token})
	if s.signInFirst(w, p, err) {
		return
	}
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	v := ordersView{Orders: orderViews(res.GetOrders()), Missing: missingViews(res.GetMissingSections()), Paged: token != ""}
	if next := res.GetNextPageToken(); next != "" {
		v.Next = "/orders?page=" + url.QueryEscape(next)
	}
	p.data.Content = v
	s.render(w, p, "orders")
}

// orderDetail is one of the customer's orders.
func (s *Site) orderDetail(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Order", "orders")
	id := r.PathValue("id")
	res, sessErr, err := invokeBeside(s, p, "AccountService/GetOrder", s.account.GetOrder, &storefrontv1.GetOrderRequest{OrderId: id})
	if s.signInFirst(w, p, err) {
		return
	}
	if connect.CodeOf(err) == connect.CodeInvalidArgument {
		// An id the gateway refuses to look up names no order.
		err = connect.NewError(connect.CodeNotFound, "no such order")
	}
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	p.data.Title = "Order " + res.GetOrder().GetOrderId()
	p.data.Content = orderPage{Order: orderViewOf(res.GetOrder()), Missing: missingViews(res.GetMissingSections())}
	s.render(w, p, "order")
}

// placeOrder handles the order buttons of the products page: one line of
// product_id and quantity, with the idempotency key the page was drawn
// with, so sending the form twice places one order.
func (s *Site) placeOrder(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Order", "orders")
	p.data.Return = "/orders"
	if !s.formAllowed(w, p) {
		return
	}
	product := r.PostForm.Get("product_id")
	quantity, qErr := strconv.Atoi(r.PostForm.Get("quantity"))
	key := r.PostForm.Get("key")
	switch {
	case !idPattern.MatchString(product):
		s.refuse(p, http.StatusBadRequest, "Please choose a product from the list.")
	case qErr != nil || quantity < 1 || quantity > 99:
		s.refuse(p, http.StatusBadRequest, "The quantity must be a whole number from 1 to 99.")
	case !keyPattern.MatchString(key):
		s.refuse(p, http.StatusBadRequest, "That form is out of date. Please reload the products page and try again.")
	}
	if p.data.Error != nil {
		s.render(w, p, "error")
		return
	}
	res, sessErr, err := invokeBeside(s, p, "AccountService/PlaceOrder", s.account.PlaceOrder, &storefrontv1.PlaceOrderRequest{
		IdempotencyKey: key,
		Lines:          []*storefrontv1.PlaceOrderLine{{ProductId: product, Quantity: int32(quantity)}},
	})
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	o := res.GetOrder()
	p.data.Title = "Order " + o.GetOrderId()
	p.data.Notice = "Thank you! Your order " + o.GetOrderId() + " is placed."
	p.data.Return = "/orders/" + o.GetOrderId()
	p.data.Content = orderPage{Order: orderViewOf(o)}
	s.render(w, p, "order")
}

// profile shows the customer's profile in a form.
func (s *Site) profile(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Your profile", "profile")
	res, sessErr, err := invokeBeside(s, p, "AccountService/GetDashboard", s.account.GetDashboard, &storefrontv1.GetDashboardRequest{RecentOrderCount: 1})
	if s.signInFirst(w, p, err) {
		return
	}
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	p.data.Content = profileView{Profile: res.GetProfile()}
	s.render(w, p, "profile")
}

// updateProfile handles the profile form.
func (s *Site) updateProfile(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Your profile", "profile")
	p.data.Return = "/profile"
	if !s.formAllowed(w, p) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("display_name"))
	locale := strings.TrimSpace(r.PostForm.Get("locale"))
	switch {
	case name == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name):
		s.refuse(p, http.StatusBadRequest, "The display name must be 1 to 64 characters.")
	case locale != "" && !localePattern.MatchString(locale):
		s.refuse(p, http.StatusBadRequest, "The language must be a tag such as en-GB, or empty.")
	}
	if p.data.Error != nil {
		s.render(w, p, "error")
		return
	}
	res, sessErr, err := invokeBeside(s, p, "AccountService/UpdateProfile", s.account.UpdateProfile, &storefrontv1.UpdateProfileRequest{
		DisplayName:    name,
		Locale:         locale,
		MarketingOptIn: r.PostForm.Get("marketing") == "on",
	})
	if err = firstError(err, sessErr); err != nil {
		s.failed(p, err)
		s.render(w, p, "error")
		return
	}
	p.data.Notice = "Your profile is saved."
	p.data.Content = profileView{Profile: res.GetProfile()}
	s.render(w, p, "profile")
}

// formAllowed refuses a form post from another site or one that cannot be
// read, drawing the error page; it reports whether the post may go on.
func (s *Site) formAllowed(w http.ResponseWriter, p *page) bool {
	if !sameOrigin(p.r, s.origin) {
		s.refuse(p, http.StatusForbidden, "This form can only be sent from the store's own pages.")
	} else if err := parseForm(w, p.r); err != nil {
		s.refuse(p, http.StatusBadRequest, "That form could not be read.")
	}
	if p.data.Error != nil {
		s.render(w, p, "error")
		return false
	}
	return true
}

// signInFirst sends a signed-out visitor of a GET page to sign in, coming
// back to the page; it reports whether it did.
func (s *Site) signInFirst(w http.ResponseWriter, p *page, err error) bool {
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		return false
	}
	http.Redirect(w, p.r, loginURL(p.r.URL.RequestURI()), http.StatusSeeOther)
	return true
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	keyPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	localePattern = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$`)
)

// newIdempotencyKey returns a fresh key for one drawn order form.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return base64.RawURLEncoding.EncodeToString(b)
}

// Views: what the templates show of the API's answers.

type productsView struct {
	Products []productView
	Next     string // the next page's URL, if any
	Paged    bool   // not the first page
	SignedIn bool
	Key      string // the idempotency key of the order buttons
}

type productView struct {
	ID, Name, Description, Category, Price string
	InStock                                bool
}

type dashboardView struct {
	Profile *storefrontv1.Profile
	Loyalty *loyaltyView
	Orders  []orderView
	Missing []string
}

type loyaltyView struct {
	Points, ToNext int64
	Tier           string
}

type ordersView struct {
	Orders  []orderView
	Missing []string
	Next    string
	Paged   bool
}

type orderPage struct {
	Order   orderView
	Missing []string
}

type orderView struct {
	ID, Created, Status, Total string
	Lines                      []lineView
}

type lineView struct {
	ProductID, Name, UnitPrice string
	Quantity                   int32
}

type profileView struct {
	Profile *storefrontv1.Profile
}

func productViews(products []*storefrontv1.Product) []productView {
	out := make([]productView, 0, len(products))
	for _, p := range products {
		out = append(out, productView{
			ID: p.GetProductId(), Name: p.GetName(), Description: p.GetDescription(),
			Category: p.GetCategory(), Price: money(p.GetPrice()), InStock: p.GetInStock(),
		})
	}
	return out
}

func loyaltyViewOf(l *storefrontv1.Loyalty) *loyaltyView {
	if l == nil {
		return nil
	}
	tier := strings.TrimPrefix(l.GetTier().String(), "LOYALTY_TIER_")
	return &loyaltyView{Points: l.GetPoints(), ToNext: l.GetPointsToNextTier(), Tier: strings.ToLower(tier)}
}

func orderViews(orders []*storefrontv1.Order) []orderView {
	out := make([]orderView, 0, len(orders))
	for _, o := range orders {
		out = append(out, orderViewOf(o))
	}
	return out
}

func orderViewOf(o *storefrontv1.Order) orderView {
	v := orderView{
		ID:     o.GetOrderId(),
		Status: strings.ToLower(strings.TrimPrefix(o.GetStatus().String(), "ORDER_STATUS_")),
		Total:  money(o.GetTotal()),
	}
	if o.GetCreateTime() != nil {
		v.Created = o.GetCreateTime().AsTime().UTC().Format("2 Jan 2006 15:04 UTC")
	}
	for _, l := range o.GetLines() {
		v.Lines = append(v.Lines, lineView{ProductID: l.GetProductId(), Name: l.GetProductName(), UnitPrice: money(l.GetUnitPrice()), Quantity: l.GetQuantity()})
	}
	return v
}

// sectionNames are the parts of an answer, as a customer would name them.
var sectionNames = map[storefrontv1.Section]string{
	storefrontv1.Section_SECTION_PROFILE:         "your profile",
	storefrontv1.Section_SECTION_LOYALTY:         "your loyalty points",
	storefrontv1.Section_SECTION_ORDERS:          "your orders",
	storefrontv1.Section_SECTION_PRODUCT_DETAILS: "product names",
}

func missingViews(sections []storefrontv1.Section) []string {
	var out []string
	for _, s := range sections {
		if name, ok := sectionNames[s]; ok {
			out = append(out, name)
		}
	}
	return out
}

// money formats an amount, e.g. "49.90 EUR".
func money(m *storefrontv1.Money) string {
	if m == nil {
		return ""
	}
	a := m.GetAmountMinor()
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, a/100, a%100, m.GetCurrencyCode())
}
