package demo

import (
	"html/template"
	"strings"
)

// layout is every page's frame: the sign-in line, the content, the
// waterfall of the page's calls and the fault buttons. Element ids are
// what the tests look for.
const layout = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Acme store · Custodian demo</title>
<style>
body{font-family:system-ui,sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:#222;line-height:1.4}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:baseline;border-bottom:1px solid #ddd;padding-bottom:.5rem}
header .brand{font-weight:700;font-size:1.3rem;color:#222;text-decoration:none}
nav a{margin-right:.8rem}nav a.here{font-weight:700;text-decoration:none;color:#222}
.whobox{margin-left:auto;text-align:right}.whobox p{display:inline;margin:0 .5rem 0 0}
.demo-note{color:#666;font-size:.85rem;margin:.3rem 0 1rem}
.notice{background:#e8f5e9;border:1px solid #a5d6a7;padding:.5rem .8rem;border-radius:4px}
.partial{background:#fff8e1;border:1px solid #ffcc80;padding:.5rem .8rem;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.8rem}
.card h2,.card h3{margin-top:0;font-size:1.05rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eee}
ul.products{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.8rem}
.product form{display:flex;gap:.4rem;align-items:center}.product input[type=number]{width:3.5rem}
.muted{color:#777}.pager a{margin-right:1rem}
#error{border:1px solid #ef9a9a;background:#ffebee;padding:.8rem 1rem;border-radius:6px}
section.trace{margin-top:2rem;border-top:2px solid #333;padding-top:.5rem}
section.trace h2,section.faults h2{font-size:1rem;margin:.3rem 0}
ol.spans{list-style:none;padding:0;margin:0;font-size:.75rem;font-family:ui-monospace,monospace}
ol.spans li{display:grid;grid-template-columns:minmax(0,32rem) 1fr 5rem;gap:.5rem;align-items:center;border-bottom:1px solid #f2f2f2;padding:1px 0}
.label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.attrs{color:#777}
.track{position:relative;height:.8rem;background:#fafafa}
.bar{position:absolute;top:0;bottom:0;background:#64b5f6;border-radius:2px;min-width:2px}
li.client .bar{background:#9575cd}li.internal .bar{background:#4db6ac}li.untraced .bar{background:#bdbdbd}
li.failed .bar{background:#e53935}li.failed .name{color:#c62828;font-weight:700}
.dur{text-align:right}.axis{color:#777;font-size:.8rem;margin:0 0 .3rem}
section.faults{margin-top:1.5rem;border-top:1px solid #ddd;padding-top:.5rem;font-size:.9rem}
section.faults td.state[data-mode=failing]{color:#c62828;font-weight:700}section.faults td.state[data-mode=slow]{color:#ef6c00;font-weight:700}
section.faults form{display:inline}section.faults button{margin-right:.3rem}
</style>
</head><body>
<header>
<a class="brand" href="/">Acme store</a>
<nav><a href="/"{{if eq .Nav "home"}} class="here"{{end}}>Home</a><a href="/products"{{if eq .Nav "products"}} class="here"{{end}}>Products</a><a href="/orders"{{if eq .Nav "orders"}} class="here"{{end}}>Orders</a><a href="/profile"{{if eq .Nav "profile"}} class="here"{{end}}>Profile</a></nav>
<div class="whobox">{{if .Who.SignedIn}}<p id="who">Signed in as <strong>{{.Who.Name}}</strong> ({{.Who.Email}})</p><a id="logout" href="{{.Who.LogoutURL}}">Sign out</a>
{{else}}<p id="who">Not signed in.</p><a id="login" href="{{.Who.LoginURL}}">Sign in</a> <span class="muted">(alice / demo or bob / demo)</span>{{end}}</div>
</header>
<p class="demo-note"><em>Custodian demo: made-up users and keys, not for production.</em> Pages are rendered on the server by Go code calling the gateway's own API with your cookie.</p>
{{with .Notice}}<p id="notice" class="notice">{{.}}</p>{{end}}
<main>{{template "content" .}}</main>
{{with .Waterfall}}<section id="waterfall" class="trace" aria-label="What the gateway did for this page">
<h2>What the gateway did for this page</h2>
<p class="axis">Spans of this page's calls to the gateway, from its first call: 0 to {{.Total}}. Red: failed.</p>
<ol class="spans">{{range .Rows}}
<li class="span {{.Kind}}{{if .Failed}} failed{{end}}{{if .Untraced}} untraced{{end}}" data-kind="{{.Kind}}" data-failed="{{.Failed}}"><span class="label" style="padding-left:{{.Depth}}em"><span class="name">{{.Name}}</span> <span class="attrs">{{.Summary}}</span></span><span class="track"><span class="bar" style="left:{{.Left}}%;width:{{.Width}}%"></span></span><span class="dur">{{.Duration}}</span></li>{{end}}
</ol></section>{{end}}
{{with .Faults}}<section id="faults" class="faults">
<h2>Demo: make a backend slow (800 ms) or failing</h2>
<table>{{range .}}{{$b := .Backend}}
<tr id="fault-{{$b}}"><th>{{$b}}</th><td class="state" data-mode="{{.Mode}}">{{.Mode}}</td><td><form method="post" action="/demo/faults"><input type="hidden" name="backend" value="{{$b}}"><input type="hidden" name="return" value="{{$.Return}}">{{range .Modes}}<button name="mode" value="{{.}}">{{.}}</button>{{end}}</form></td></tr>{{end}}
</table></section>{{end}}
</body></html>
`

// contents are the pages' own parts, each the "content" of the layout.
var contents = map[string]string{
	"welcome": `<h1>Welcome to the Acme store</h1>
<p>Sign in to see your dashboard, your orders and your profile, or browse the <a href="/products">products</a>.</p>
{{with .Content}}<h2>Some of our products</h2>
<ul id="products" class="products">{{range .Products}}<li class="product card"><h3>{{.Name}}</h3><p class="muted">{{.Category}} · {{.Price}}</p></li>{{end}}</ul>{{end}}`,

	"dashboard": `{{with .Content}}<h1 id="dashboard">Hello, {{.Profile.GetDisplayName}}</h1>
{{with .Missing}}<p id="missing" class="partial">We could not load {{join .}} just now; the rest of your dashboard is here.</p>{{end}}
<div class="cards">
<section id="profile-card" class="card"><h2>Profile</h2><p>{{.Profile.GetDisplayName}}<br>{{.Profile.GetEmail}}<br><span class="muted">language {{or .Profile.GetLocale "not set"}} · offers {{if .Profile.GetMarketingOptIn}}yes{{else}}no{{end}}</span></p><p><a href="/profile">Edit</a></p></section>
<section id="loyalty" class="card"><h2>Loyalty</h2>{{with .Loyalty}}<p><strong id="points">{{.Points}}</strong> points · {{.Tier}}</p><p class="muted">{{.ToNext}} points to the next tier</p>{{else}}<p class="muted" id="loyalty-missing">Your points are not available right now.</p>{{end}}</section>
</div>
<h2>Recent orders</h2>
{{if .Orders}}<table id="recent-orders"><tr><th>Order</th><th>Placed</th><th>Status</th><th>Total</th></tr>{{range .Orders}}<tr class="order"><td><a href="/orders/{{.ID}}">{{.ID}}</a></td><td>{{.Created}}</td><td>{{.Status}}</td><td>{{.Total}}</td></tr>{{end}}</table>
<p><a href="/orders">All orders</a></p>{{else}}<p class="muted" id="recent-orders-missing">No orders to show.</p>{{end}}{{end}}`,

	"products": `<h1>Products</h1>
{{with .Content}}{{if not .SignedIn}}<p class="muted">Anyone may browse; <a href="/auth/login?return_to=%2Fproducts">sign in</a> to order.</p>{{end}}
<ul id="products" class="products">{{range .Products}}<li class="product card" data-id="{{.ID}}"><h3>{{.Name}}</h3><p>{{.Description}}</p><p class="muted">{{.Category}} · <strong>{{.Price}}</strong> · {{if .InStock}}in stock{{else}}out of stock{{end}}</p>
{{if and $.Content.SignedIn .InStock}}<form method="post" action="/orders"><input type="hidden" name="product_id" value="{{.ID}}"><input type="hidden" name="key" value="{{$.Content.Key}}{{.ID}}"><label>qty <input type="number" name="quantity" value="1" min="1" max="99"></label><button name="order">Order</button></form>{{end}}</li>{{end}}</ul>
<p class="pager">{{if .Paged}}<a id="first" href="/products">First page</a>{{end}}{{with .Next}}<a id="next" href="{{.}}">Next page</a>{{end}}</p>{{end}}`,

	"orders": `<h1>Your orders</h1>
{{with .Content}}{{with .Missing}}<p id="missing" class="partial">We could not load {{join .}} just now.</p>{{end}}
<table id="orders"><tr><th>Order</th><th>Placed</th><th>Items</th><th>Status</th><th>Total</th></tr>{{range .Orders}}<tr class="order" data-id="{{.ID}}"><td><a href="/orders/{{.ID}}">{{.ID}}</a></td><td>{{.Created}}</td><td>{{range $i, $l := .Lines}}{{if $i}}, {{end}}{{$l.Quantity}} × {{or $l.Name $l.ProductID}}{{end}}</td><td>{{.Status}}</td><td>{{.Total}}</td></tr>{{end}}</table>
<p class="pager">{{if .Paged}}<a id="first" href="/orders">First page</a>{{end}}{{with .Next}}<a id="next" href="{{.}}">Next page</a>{{end}}</p>{{end}}`,

	"order": `{{with .Content}}{{with .Order}}<h1>Order <span id="order-id">{{.ID}}</span></h1>
<section id="order" class="card" data-id="{{.ID}}"><p>Placed {{.Created}} · <strong>{{.Status}}</strong> · total <strong id="order-total">{{.Total}}</strong></p>
<table><tr><th>Product</th><th>Quantity</th><th>Unit price</th></tr>{{range .Lines}}<tr class="line"><td>{{or .Name .ProductID}}</td><td>{{.Quantity}}</td><td>{{.UnitPrice}}</td></tr>{{end}}</table></section>{{end}}
{{with .Missing}}<p id="missing" class="partial">We could not load {{join .}} just now.</p>{{end}}
<p><a href="/orders">All orders</a></p>{{end}}`,

	"profile": `<h1>Your profile</h1>
{{with .Content}}{{with .Profile}}<p>Shown as <strong id="profile-name">{{.GetDisplayName}}</strong> ({{.GetEmail}})</p>
<form id="profile-form" method="post" action="/profile" class="card">
<p><label>Display name <input name="display_name" value="{{.GetDisplayName}}" maxlength="64" required></label></p>
<p><label>Language <input name="locale" value="{{.GetLocale}}" placeholder="en-GB" maxlength="35"></label></p>
<p><label><input type="checkbox" name="marketing"{{if .GetMarketingOptIn}} checked{{end}}> Send me offers</label></p>
<p><button name="save">Save</button></p>
</form>{{end}}{{end}}`,

	"error": `{{with .Error}}<section id="error" data-status="{{.Status}}"><h1>Sorry</h1><p>{{.Message}}</p>
{{with .Code}}<p class="muted">Connect code: <code id="error-code">{{.}}</code></p>{{end}}
{{with .SignIn}}<p><a id="signin" href="{{.}}">Sign in</a></p>{{end}}
<p><a href="/">Back to the store</a></p></section>{{end}}`,
}

// pages are the parsed templates, each the layout with one content.
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(template.FuncMap{
		"join": func(s []string) string { return strings.Join(s, ", ") },
	}).Parse(layout))
	out := make(map[string]*template.Template, len(contents))
	for name, content := range contents {
		t := template.Must(base.Clone())
		template.Must(t.New("content").Parse(content))
		out[name] = t
	}
	return out
}()
