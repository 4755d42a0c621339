package custodian_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/demo/backends"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/config"
)

// dashboardFile is the Grafana dashboard docs/operations.md points to.
const dashboardFile = "docs/grafana/custodian-dashboard.json"

// TestGrafanaDashboard checks docs/grafana/custodian-dashboard.json
// against a real gateway: it runs one through everything its metrics count
// (a login, pass-through and aggregate calls, an error, a refresh shared by
// parallel calls, a token exchange, a rate-limit refusal, a backend failing
// until its breaker opens, a sign-out, Redis going away), scrapes the admin
// listener's /metrics, and fails if any panel's query names a metric the
// gateway does not export, or a label that metric does not carry. A metric
// or label renamed in the code fails it until the dashboard follows.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	dash := loadDashboard(t)
	scraped := scrapeBusyGateway(t)

	if os.Getenv("CUSTODIAN_DUMP_METRICS") != "" {
		for _, name := range slices.Sorted(maps.Keys(scraped)) {
			f := scraped[name]
			t.Logf("%s %s %v", name, f.kind, slices.Sorted(maps.Keys(f.labels)))
		}
	}

	check := func(where, expr string) {
		metrics, labels := promqlNames(expr)
		if len(metrics) == 0 {
			t.Errorf("%s: names no metric: %s", where, expr)
			return
		}
		// job and instance are the labels Prometheus adds to every series
		// it scrapes; le is a histogram's buckets'.
		have := map[string]bool{"job": true, "instance": true}
		for _, m := range metrics {
			family, ok := scraped.lookup(m)
			if !ok {
				t.Errorf("%s: the gateway exports no metric %s (expression %s)", where, m, expr)
				continue
			}
			for l := range family.labels {
				have[l] = true
			}
			if family.kind == "histogram" {
				have["le"] = true
			}
		}
		for _, l := range labels {
			if !have[l] {
				t.Errorf("%s: label %s is on none of %v (expression %s)", where, l, metrics, expr)
			}
		}
	}
	queries := 0
	for _, p := range dash.allPanels() {
		for _, tg := range p.Targets {
			queries++
			check(fmt.Sprintf("panel %q, query %s", p.Title, tg.RefID), tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			inner, ok := strings.CutPrefix(v.Definition, "label_values(")
			if !ok {
				t.Errorf("variable %s: definition %q, want label_values(metric, label)", v.Name, v.Definition)
				continue
			}
			check("variable "+v.Name, inner[:strings.LastIndexByte(inner, ',')])
		}
	}
	if queries < 20 {
		t.Errorf("the dashboard has %d queries; want one per panel of docs/operations.md", queries)
	}
}

// grafanaDashboard is the part of Grafana's dashboard model checked here.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

// grafanaVariable is a templating variable: the datasource's query is a
// string (the plugin), a query variable's an object.
type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
}

type grafanaPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

func (d *grafanaDashboard) allPanels() []grafanaPanel {
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

// loadDashboard reads the dashboard and checks its frame: valid JSON, a
// Prometheus ${datasource} variable every query uses, unique panel ids.
func loadDashboard(t *testing.T) *grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", dashboardFile)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion 36 or later", dashboardFile, d.Title, d.UID, d.SchemaVersion)
	}
	hasVar := slices.ContainsFunc(d.Templating.List, func(v grafanaVariable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	})
	if !hasVar {
		t.Errorf("%s: no templating variable datasource of type datasource, query prometheus", dashboardFile)
	}
	ids := map[int]string{}
	for _, p := range d.allPanels() {
		if p.ID == 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: datasource %s, want ${datasource}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: a query without expr or refId", p.Title)
			}
			if tg.Datasource != nil && !strings.Contains(string(tg.Datasource), "${datasource}") {
				t.Errorf("panel %q, query %s: datasource %s, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	return &d
}

// metricFamily is what a scrape says about one metric.
type metricFamily struct {
	kind   string          // counter, gauge, histogram, ...
	labels map[string]bool // every label name of its series
}

type scrape map[string]*metricFamily

// lookup finds the family of a series name: a histogram's _bucket, _sum
// and _count belong to it, and nothing else does.
func (s scrape) lookup(name string) (*metricFamily, bool) {
	if f, ok := s[name]; ok && f.kind != "histogram" && f.kind != "summary" {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := s[base]; ok && (f.kind == "histogram" || (f.kind == "summary" && suffix != "_bucket")) {
			return f, true
		}
	}
	return nil, false
}

// parseExposition reads Prometheus's text format: # TYPE lines and the
// label names of every sample.
func parseExposition(r io.Reader) (scrape, error) {
	s := scrape{}
	family := func(name string) *metricFamily {
		f := s[name]
		if f == nil {
			f = &metricFamily{kind: "untyped", labels: map[string]bool{}}
			s[name] = f
		}
		return f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lastTyped string
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			family(name).kind = kind
			lastTyped = name
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			return nil, fmt.Errorf("sample line without a value: %q", line)
		}
		name := line[:end]
		f := s[name]
		if f == nil && lastTyped != "" && strings.HasPrefix(name, lastTyped+"_") {
			f = s[lastTyped] // a histogram's _bucket, _sum, _count
		}
		if f == nil {
			f = family(name)
		}
		if line[end] == '{' {
			close := strings.LastIndexByte(line, '}')
			if close < end {
				return nil, fmt.Errorf("unterminated labels: %q", line)
			}
			for _, m := range labelPair.FindAllStringSubmatch(line[end+1:close], -1) {
				f.labels[m[1]] = true
			}
		}
	}
	return s, sc.Err()
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// promqlNames returns the metric names and the label names a PromQL
// expression uses. It knows enough PromQL for dashboards: selectors with
// matchers, ranges, functions, aggregations with by/without, binary
// operators with on/ignoring/group_left/group_right, and Grafana's $
// variables.
func promqlNames(expr string) (metrics, labels []string) {
	add := func(list *[]string, name string) {
		if !slices.Contains(*list, name) {
			*list = append(*list, name)
		}
	}
	s := promqlString.ReplaceAllString(expr, `""`)
	// Label matchers: the names inside {}.
	for _, m := range promqlMatchers.FindAllStringSubmatch(s, -1) {
		for _, lm := range promqlMatcher.FindAllStringSubmatch(m[1], -1) {
			add(&labels, lm[1])
		}
	}
	s = promqlMatchers.ReplaceAllString(s, " ")
	// Grouping lists: by (...), without (...), on (...), ignoring (...),
	// group_left (...), group_right (...).
	for _, m := range promqlGrouping.FindAllStringSubmatch(s, -1) {
		for l := range strings.SplitSeq(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				add(&labels, l)
			}
		}
	}
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = promqlRange.ReplaceAllString(s, " ")
	s = promqlVariable.ReplaceAllString(s, " ")
	for _, m := range promqlIdent.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		rest := strings.TrimLeft(s[m[1]:], " \t\n")
		switch {
		case strings.HasPrefix(rest, "("): // a function or an aggregation
		case promqlKeywords[name]:
		case m[2] > 0 && strings.ContainsAny(s[m[2]-1:m[2]], "0123456789."): // 1e3, 0.5
		default:
			add(&metrics, name)
		}
	}
	return metrics, labels
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers = regexp.MustCompile(`\{([^}]*)\}`)
	promqlMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlVariable = regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?`)
	promqlIdent    = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "Inf": true, "nan": true, "NaN": true, "e": true,
	}
)

// scrapeBusyGateway runs a gateway with an admin listener through every
// event its metrics count and returns its /metrics.
func scrapeBusyGateway(t *testing.T) scrape {
	t.Helper()
	srv := redistest.Start(t)
	ctx := t.Context()
	e := gt.NewDemoEnv(t,
		// The provider's tokens live 10 minutes, but its answer at login
		// claims 60 seconds: moving the clock 2 minutes expires that first
		// token only (as in server/session's TestRefresh).
		gt.WithAccessLifetime(10*time.Minute),
		gt.WithCodeExpiresIn(60),
		// A refresh that takes a moment, so that parallel calls join it.
		gt.WithTokenGate(func(grant string, serve func()) {
			if grant == "refresh_token" {
				time.Sleep(300 * time.Millisecond)
			}
			serve()
		}),
		gt.WithConfig(func(c *config.Config) {
			c.Telemetry.Admin.Listen = "127.0.0.1:0"
			c.Session.Store, c.Session.RedisURL = config.StoreRedis, srv.URL()
			c.Session.RedisReadTimeout, c.Session.RedisDialTimeout = 300*time.Millisecond, 300*time.Millisecond
			c.Session.RefreshSkew = time.Second
			c.ApplyDefaults()
			c.RateLimits.Methods = map[string]config.RateLimit{
				"/acme.storefront.v1.ProductService/ListProducts": {Rate: 0.001, Burst: 1},
			}
		}),
	)
	admin := e.Gateway.AdminAddr()
	if admin == "" {
		t.Fatal("no admin listener with telemetry.admin.listen set")
	}

	b := e.SignedIn(t, "alice") // sessions started
	account := b.Account(gt.Connect)
	dashboard := func() error {
		_, err := account.GetDashboard(ctx, &storefrontv1.GetDashboardRequest{}) // user token, exchange, client credentials, caches
		return err
	}
	if err := dashboard(); err != nil {
		t.Fatalf("GetDashboard: %v", err)
	}
	if _, err := account.GetOrder(ctx, &storefrontv1.GetOrderRequest{OrderId: "o-1001"}); err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	if _, err := account.GetOrder(ctx, &storefrontv1.GetOrderRequest{OrderId: "o-none"}); err == nil {
		t.Fatal("GetOrder of an order that does not exist: no error")
	}
	products := b.Products(gt.Connect)
	for range 2 { // the second is refused by its method's limit
		_, _ = products.ListProducts(ctx, &storefrontv1.ListProductsRequest{})
	}

	// The token expires on the gateway's clock: one refresh, and the
	// other calls join it.
	e.Clock.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if err := dashboard(); err != nil {
				t.Errorf("GetDashboard after the token expired: %v", err)
			}
		})
	}
	wg.Wait()

	// A failing backend: the dashboard goes on without it, and its breaker
	// opens.
	e.World.Backends.Loyalty.SetFault(backends.Fault{Code: connect.CodeUnavailable})
	for range 8 {
		_ = dashboard()
	}
	e.World.Backends.Loyalty.SetFault(backends.Fault{})

	if _, err := b.Sessions(gt.Connect).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{}); err != nil {
		t.Fatalf("SignOutEverywhere: %v", err)
	}

	// Redis goes away: the next call that needs a session fails, and so do
	// the store's commands.
	other := e.SignedIn(t, "bob")
	srv.Kill()
	_, _ = other.GetSession()

	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping the admin listener: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	s, err := parseExposition(res.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return s
}

// TestPromQLNames checks the PromQL reading TestGrafanaDashboard relies on.
func TestPromQLNames(t *testing.T) {
	tests := []struct {
		expr            string
		metrics, labels []string
	}{
		{`sum by (rpc_method) (rate(rpc_server_call_duration_seconds_count{job=~"$job"}[$__rate_interval]))`,
			[]string{"rpc_server_call_duration_seconds_count"}, []string{"job", "rpc_method"}},
		{`histogram_quantile(0.99, sum by (rpc_method, le) (rate(x_bucket{a="b, c", d!~"e{f}"}[5m])))`,
			[]string{"x_bucket"}, []string{"a", "d", "rpc_method", "le"}},
		{`sum by (m, code) (rate(a_total{code!="OK"}[1m])) / ignoring(code) group_left sum by (m) (rate(a_total[1m]))`,
			[]string{"a_total"}, []string{"code", "m"}},
		{`increase(b_total[1h]) > 0 and on(instance) up == 1 or vector(1e3) * 2.5`,
			[]string{"b_total", "up"}, []string{"instance"}},
		{`1 - sum without (quantile) (go_gc_duration_seconds) offset 5m`,
			[]string{"go_gc_duration_seconds"}, []string{"quantile"}},
	}
	for _, tt := range tests {
		metrics, labels := promqlNames(tt.expr)
		slices.Sort(labels)
		slices.Sort(tt.labels)
		if !slices.Equal(metrics, tt.metrics) || !slices.Equal(labels, tt.labels) {
			t.Errorf("promqlNames(%s) = %v, %v; want %v, %v", tt.expr, metrics, labels, tt.metrics, tt.labels)
		}
	}
}
