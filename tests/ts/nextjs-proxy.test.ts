// @custodian-bff/nextjs/proxy's custodianProxy, called with NextRequests as
// Next.js 16 calls proxy.ts, and its answers read the way Next.js reads
// them: x-middleware-rewrite (forward to the gateway), Location (redirect),
// x-middleware-override-headers and x-middleware-request-* (continue with
// changed request headers).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";

register("./next-resolve.js", import.meta.url);
const { NextRequest } = await import("next/server.js");
const { custodianProxy } = await import("@custodian-bff/nextjs/proxy");

const APP = "http://app.test";
const GATEWAY = "http://127.0.0.1:9";

function request(path: string, headers: Record<string, string> = {}, method = "GET") {
  return new NextRequest(new URL(path, APP), { headers, method });
}

const signedIn = { cookie: "theme=dark; __Host-custodian=abc" };

describe("custodianProxy", () => {
  const proxy = custodianProxy({
    gatewayUrl: GATEWAY,
    protectedPaths: ["/dashboard", "/orders", /^\/account\/\d+$/],
  });

  function assertRewrite(path: string, want = GATEWAY + path) {
    const res = proxy(request(path));
    assert.equal(res.headers.get("x-middleware-rewrite"), want, path);
    assert.equal(res.headers.get("x-middleware-next"), null, path);
    assert.equal(res.headers.get("location"), null, path);
  }

  function assertNext(path: string, headers: Record<string, string> = {}) {
    const res = proxy(request(path, headers));
    assert.equal(res.headers.get("x-middleware-next"), "1", path);
    assert.equal(res.headers.get("x-middleware-rewrite"), null, path);
    assert.equal(res.headers.get("location"), null, path);
    const overridden = (res.headers.get("x-middleware-override-headers") ?? "").split(",");
    assert.ok(overridden.includes("x-custodian-path"), `${path}: x-custodian-path not set`);
    assert.equal(res.headers.get("x-middleware-request-x-custodian-path"), path);
    return res;
  }

  function assertLogin(path: string, method = "GET") {
    const res = proxy(request(path, {}, method));
    assert.equal(res.status, 303, path);
    assert.equal(res.headers.get("location"), `${APP}/auth/login?return_to=${encodeURIComponent(path)}`);
    assert.equal(res.headers.get("x-middleware-rewrite"), null, path);
  }

  test("forwards /auth/* and the RPC paths of custodian.v1 and acme.storefront.v1 to the gateway", () => {
    assertRewrite("/auth/login?return_to=%2Forders%3Fpage%3D2");
    assertRewrite("/auth/callback?code=c&state=s");
    assertRewrite("/auth/logout");
    assertRewrite("/auth");
    assertRewrite("/custodian.v1.SessionService/GetSession");
    assertRewrite("/acme.storefront.v1.AccountService/PlaceOrder");
    assertRewrite("/acme.storefront.v1.ProductService/ListProducts?connect=v1&encoding=json&message=%7B%7D");
  });

  test("leaves look-alike paths to the app", () => {
    assertNext("/authors");
    assertNext("/custodian.v1x/y");
    assertNext("/acme.catalog.v1.CatalogService/GetProduct");
    assertNext("/products/auth/login");
  });

  test("sends visitors without the session cookie from a protected page to the login, with return_to", () => {
    assertLogin("/dashboard");
    assertLogin("/orders?page=2&sort=new");
    assertLogin("/orders/o-17");
    assertLogin("/account/42");
    assertLogin("/orders", "POST");
  });

  test("lets signed-in visitors (with the cookie) through, with x-custodian-path", () => {
    assertNext("/dashboard", signedIn);
    assertNext("/orders?page=2", signedIn);
    assertNext("/account/42", signedIn);
  });

  test("lets anyone see unprotected pages", () => {
    assertNext("/");
    assertNext("/products?page=3");
    assertNext("/ordersx");
    assertNext("/account/me");
  });

  test("a session cookie of another name does not count", () => {
    const res = proxy(request("/dashboard", { cookie: "custodian=abc; __Host-custodian-login-x=1" }));
    assert.equal(res.status, 303);
  });

  test("replaces an x-custodian-path sent by the client", () => {
    assertNext("/orders?page=2", { ...signedIn, "x-custodian-path": "//evil.example" });
    assertNext("/products", { "x-custodian-path": "/dashboard" });
  });

  test("keeps the other request headers", () => {
    const res = assertNext("/dashboard", { ...signedIn, "x-forwarded-for": "203.0.113.7" });
    assert.equal(res.headers.get("x-middleware-request-cookie"), signedIn.cookie);
    assert.equal(res.headers.get("x-middleware-request-x-forwarded-for"), "203.0.113.7");
  });
});

describe("custodianProxy options", () => {
  let saved: string | undefined;
  before(() => {
    saved = process.env.CUSTODIAN_URL;
  });
  after(() => {
    if (saved === undefined) delete process.env.CUSTODIAN_URL;
    else process.env.CUSTODIAN_URL = saved;
  });

  test("reads CUSTODIAN_URL per request when gatewayUrl is not given", () => {
    const proxy = custodianProxy({ protectedPaths: [] });
    process.env.CUSTODIAN_URL = "http://127.0.0.1:1111";
    assert.equal(
      proxy(request("/auth/login")).headers.get("x-middleware-rewrite"),
      "http://127.0.0.1:1111/auth/login",
    );
    process.env.CUSTODIAN_URL = "http://127.0.0.1:2222/";
    assert.equal(
      proxy(request("/custodian.v1.SessionService/GetSession")).headers.get("x-middleware-rewrite"),
      "http://127.0.0.1:2222/custodian.v1.SessionService/GetSession",
    );
    delete process.env.CUSTODIAN_URL;
    assert.throws(() => proxy(request("/auth/login")), /CUSTODIAN_URL/);
    // Pages need no gateway URL.
    assert.equal(proxy(request("/")).headers.get("x-middleware-next"), "1");
  });

  test("services, forwardPaths, cookieName and loginUrl", () => {
    const proxy = custodianProxy({
      gatewayUrl: GATEWAY,
      protectedPaths: ["/me"],
      services: ["custodian.v1", "shop.v2"],
      forwardPaths: ["/demo", /^\/\.well-known\//],
      cookieName: "sid",
      loginUrl: "/auth/login?prompt=login",
    });
    const rewrite = (path: string) => proxy(request(path)).headers.get("x-middleware-rewrite");
    assert.equal(rewrite("/shop.v2.CartService/Add"), GATEWAY + "/shop.v2.CartService/Add");
    assert.equal(rewrite("/acme.storefront.v1.ProductService/ListProducts"), null);
    assert.equal(rewrite("/demo/admin/revoke-tokens"), GATEWAY + "/demo/admin/revoke-tokens");
    assert.equal(rewrite("/.well-known/x"), GATEWAY + "/.well-known/x");
    assert.equal(rewrite("/auth/login"), GATEWAY + "/auth/login");
    assert.equal(proxy(request("/me", { cookie: "sid=1" })).headers.get("x-middleware-next"), "1");
    const res = proxy(request("/me", { cookie: "__Host-custodian=1" }));
    assert.equal(res.headers.get("location"), `${APP}/auth/login?prompt=login&return_to=%2Fme`);
  });
});
