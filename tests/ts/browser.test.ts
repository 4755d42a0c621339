// Drives a real Chromium through the demo gateway's browser flows: login
// through the demo identity provider (on another site than the gateway),
// the session cookie's attributes, script calls with the cookie, logout,
// a canceled login and two tabs signing in at once.
//
// The browser always uses the gateway's public URL (http://localhost:PORT),
// never the listen address: the provider lives at http://127.0.0.1:PORT, so
// the return from the provider is a cross-site navigation as with a real
// provider, and the SameSite=Strict session cookie behaves as in production.
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page, Request, Response } from "playwright-core";
import { launchChromium } from "./chromium.js";
import { startGateway, type Gateway } from "./gateway.js";

// Bound for one navigation or wait; a test never sleeps for a fixed time.
const NAV_TIMEOUT = 15_000;
// Bound for one whole test.
const TEST_TIMEOUT = 60_000;

const SESSION_COOKIE = "__Host-custodian";
const LOGIN_COOKIE_PREFIX = "__Host-custodian-login-";
const GET_SESSION = "/custodian.v1.SessionService/GetSession";

// The repository root, from .build/ts/tests/ts/browser.test.js.
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const screenshotDir = `${repoRoot}.build/screenshots`;

let gateway: Gateway;
let browser: Browser;
let context: BrowserContext;
// Origin of the demo identity provider, e.g. http://127.0.0.1:41234.
let idpOrigin: string;

before(async () => {
  gateway = await startGateway();
  idpOrigin = new URL(gateway.baseUrl).origin;
  assert.notEqual(new URL(gateway.publicUrl).hostname, new URL(idpOrigin).hostname, "gateway and provider must be different sites");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

beforeEach(async () => {
  context = await browser.newContext();
  context.setDefaultNavigationTimeout(NAV_TIMEOUT);
  context.setDefaultTimeout(NAV_TIMEOUT);
});

afterEach(async () => {
  await context?.close();
});

// url returns the gateway's public URL of path.
function url(path: string): string {
  return gateway.publicUrl + path;
}

// isHome matches the public home page, with or without a query.
function isHome(u: URL): boolean {
  return u.origin === gateway.publicUrl && u.pathname === "/";
}

function atProvider(u: URL): boolean {
  return u.origin === idpOrigin && u.pathname.startsWith("/demo/idp/");
}

// Traffic records every request a page makes and the response to it, in
// order, so a test can look at what the browser really sent.
interface Exchange {
  request: Request;
  response?: Response;
}

function recordTraffic(page: Page): Exchange[] {
  const log: Exchange[] = [];
  page.on("request", (request) => log.push({ request }));
  page.on("response", (response) => {
    const e = log.find((x) => x.request === response.request());
    if (e) e.response = response;
  });
  return log;
}

// whoText returns the server-rendered sign-in line of the home page.
async function whoText(page: Page): Promise<string> {
  return ((await page.textContent("#who")) ?? "").replace(/\s+/g, " ").trim();
}

// openProviderLogin goes from the home page to the provider's login form.
async function openProviderLogin(page: Page): Promise<void> {
  await page.goto(url("/"));
  assert.equal(await whoText(page), "Not signed in.");
  await page.click("#login");
  await page.waitForURL(atProvider);
  await page.waitForSelector("input[name=username]");
}

// submitCredentials fills the provider's form and waits until the browser
// is back on the gateway's home page.
async function submitCredentials(page: Page, username: string, password = "demo"): Promise<void> {
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("button[name=login]");
  await page.waitForURL(isHome);
  await page.waitForSelector("#who");
}

async function signIn(page: Page, username: string): Promise<void> {
  await openProviderLogin(page);
  await submitCredentials(page, username);
}

// APP_SHELL is a page of the gateway's origin standing in for a single-page
// application. The demo's home page cannot be used for script calls: it has
// no scripts and its CSP (default-src 'none') forbids fetch. The browser
// itself serves this one document; everything it fetches goes to the real
// gateway with the browser's real cookie jar.
const APP_SHELL = "/__browser-test/app";

// openApp opens the app shell in a new tab of the current context.
async function openApp(): Promise<Page> {
  await context.route(url(APP_SHELL), (route) =>
    route.fulfill({
      status: 200,
      contentType: "text/html; charset=utf-8",
      body: "<!doctype html><html><head><title>app shell</title></head><body>app</body></html>",
    }),
  );
  const page = await context.newPage();
  await page.goto(url(APP_SHELL));
  return page;
}

// callGetSession calls GetSession from the page's own script, with the
// browser's cookies, as a single-page application would.
async function callGetSession(page: Page): Promise<{ status: number; body: string }> {
  assert.equal(new URL(page.url()).origin, gateway.publicUrl, "script calls must come from the public origin");
  return page.evaluate(async (path) => {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    return { status: res.status, body: await res.text() };
  }, GET_SESSION);
}

async function sessionCookie(): Promise<{ name: string; value: string } | undefined> {
  return (await context.cookies(gateway.publicUrl)).find((c) => c.name === SESSION_COOKIE);
}

// Why a GetSession answer (Connect JSON) is signed out; undefined when it
// is signed in.
function signedOutReason(body: string): string | undefined {
  const res = JSON.parse(body) as { signedIn?: boolean; user?: unknown; endReason?: string; loginUrl?: string };
  if (res.signedIn) return undefined;
  assert.equal(res.user, undefined, `a user in a signed-out answer: ${body}`);
  assert.equal(res.loginUrl, `${gateway.publicUrl}/auth/login`, body);
  return res.endReason;
}

describe("browser", { timeout: TEST_TIMEOUT * 8 }, () => {
  test("the first page load after login carries the session", { timeout: TEST_TIMEOUT }, async () => {
    const page = await context.newPage();
    const traffic = recordTraffic(page);

    await signIn(page, "alice");
    assert.match(await whoText(page), /^Signed in as Alice Liddell \(.+@.+\)$/);

    // The callback answered a page that navigates itself, not a redirect.
    const callbackIndex = traffic.findIndex(
      (e) => e.request.isNavigationRequest() && new URL(e.request.url()).pathname === "/auth/callback",
    );
    assert.ok(callbackIndex >= 0, "no callback navigation recorded");
    const callback = traffic[callbackIndex];
    assert.equal(callback.request.url().startsWith(gateway.publicUrl + "/"), true, "callback not on the public URL");
    assert.equal(callback.response?.status(), 200);
    const setCookies = (await callback.response!.headersArray()).filter((h) => h.name.toLowerCase() === "set-cookie");
    assert.ok(
      setCookies.some((h) => h.value.startsWith(`${SESSION_COOKIE}=`)),
      "callback did not set the session cookie",
    );

    // The very first GET / after the callback: server-rendered, with the cookie.
    const home = traffic
      .slice(callbackIndex + 1)
      .find((e) => e.request.isNavigationRequest() && e.request.method() === "GET" && isHome(new URL(e.request.url())));
    assert.ok(home, "no GET / after the callback");
    const headers = await home.request.allHeaders();
    assert.match(headers["cookie"] ?? "", new RegExp(`(^|;\\s*)${SESSION_COOKIE}=`), "GET / after the callback carried no session cookie");
    assert.equal(home.response?.status(), 200);
    // It is the page now shown: no further navigation to / happened.
    const laterHomes = traffic
      .slice(callbackIndex + 1)
      .filter((e) => e.request.isNavigationRequest() && isHome(new URL(e.request.url())));
    assert.equal(laterHomes.length, 1, "more than one load of / after the callback");
    assert.ok(!traffic.some((e) => (e.response?.status() ?? 0) >= 500), "a response was a server error");

    await mkdir(screenshotDir, { recursive: true });
    await page.screenshot({ path: `${screenshotDir}/signed-in.png`, fullPage: true });
  });

  test("the session cookie's attributes in Chromium", { timeout: TEST_TIMEOUT }, async () => {
    const page = await context.newPage();
    await signIn(page, "alice");

    const cookies = await context.cookies();
    const session = cookies.filter((c) => c.name === SESSION_COOKIE);
    assert.equal(session.length, 1, `session cookies: ${JSON.stringify(cookies.map((c) => c.name))}`);
    const [c] = session;
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    assert.equal(c.sameSite, "Strict");
    assert.equal(c.path, "/");
    assert.equal(c.domain, "localhost", "not a host-only cookie of localhost");
    assert.equal(c.expires, -1, "not a session cookie");
    assert.match(c.value, /^[A-Za-z0-9_-]{43}$/);

    const documentCookie = await page.evaluate(() => document.cookie);
    assert.ok(!documentCookie.includes(SESSION_COOKIE), `document.cookie shows the session: ${documentCookie}`);

    const leftover = cookies.filter((x) => x.name.startsWith(LOGIN_COOKIE_PREFIX));
    assert.deepEqual(leftover.map((x) => x.name), [], "login attempt cookie left after login");
  });

  test("the page's scripts call the gateway with the cookie and see no token", { timeout: TEST_TIMEOUT }, async () => {
    const page = await context.newPage();
    await signIn(page, "alice");

    const app = await openApp();
    const traffic = recordTraffic(app);
    const { status, body } = await callGetSession(app);
    assert.equal(status, 200, body);
    const res = JSON.parse(body) as { user?: { subject?: string; name?: string }; logoutUrl?: string };
    assert.equal(res.user?.subject, "alice");
    assert.equal(res.user?.name, "Alice Liddell");
    const call = traffic.find((e) => e.request.url() === url(GET_SESSION));
    assert.ok(call, "GetSession call not recorded");
    assert.match((await call.request.allHeaders())["cookie"] ?? "", new RegExp(`(^|;\\s*)${SESSION_COOKIE}=`));

    // No token in any form: no token-named field, no JWT-shaped string.
    assert.doesNotMatch(body, /"(access|refresh|id)_?token"/i);
    assert.doesNotMatch(body, /"access/i);
    assert.doesNotMatch(body, /"refresh/i);
    assert.doesNotMatch(body, /"id_?token/i);
    assert.doesNotMatch(body, /[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/, `a JWT-shaped string in ${body}`);
    assert.doesNotMatch(body, /eyJ[A-Za-z0-9_-]/, "base64url JSON in the response");
  });

  test("logout ends the session here and at the provider", { timeout: TEST_TIMEOUT }, async () => {
    const page = await context.newPage();
    await signIn(page, "alice");
    const before = await sessionCookie();
    assert.ok(before, "no session cookie after login");

    const traffic = recordTraffic(page);
    await page.click("#logout");
    // Follow the redirects until the browser is back on the public home page.
    await page.waitForURL(isHome);
    await page.waitForSelector("#who");

    assert.ok(
      traffic.some((e) => e.request.isNavigationRequest() && atProvider(new URL(e.request.url()))),
      `logout did not visit the provider: ${traffic.map((e) => e.request.url()).join(" -> ")}`,
    );
    assert.ok(!traffic.some((e) => (e.response?.status() ?? 0) >= 400), "an error during logout");
    assert.equal(await whoText(page), "Not signed in.");
    assert.equal(await sessionCookie(), undefined, "session cookie kept after logout");

    // Without a cookie, GetSession says there is no session.
    const app = await openApp();
    const none = await callGetSession(app);
    assert.equal(none.status, 200, none.body);
    assert.equal(signedOutReason(none.body), "SESSION_END_REASON_NO_SESSION", none.body);

    // The old cookie, brought back, is refused as signed out: the session
    // ended on the server, not just in this browser. (Chromium's DevTools
    // protocol refuses a Secure cookie for an http URL, even localhost's,
    // so the cookie is put back as set over https for the same host.)
    const publicHost = new URL(gateway.publicUrl).host;
    await context.addCookies([
      { name: SESSION_COOKIE, value: before.value, url: `https://${publicHost}/`, secure: true, httpOnly: true, sameSite: "Strict" },
    ]);
    const replayed = await callGetSession(app);
    assert.equal(replayed.status, 200, replayed.body);
    assert.equal(signedOutReason(replayed.body), "SESSION_END_REASON_SIGNED_OUT", replayed.body);
    await page.reload();
    assert.equal(await whoText(page), "Not signed in.");
  });

  test("canceling at the provider shows an error page, never a 500", { timeout: TEST_TIMEOUT }, async () => {
    const page = await context.newPage();
    const traffic = recordTraffic(page);
    await openProviderLogin(page);

    const callbackResponse = page.waitForResponse(
      (r) => r.request().isNavigationRequest() && new URL(r.url()).pathname === "/auth/callback",
    );
    await page.click("button[name=cancel]");
    const res = await callbackResponse;
    await page.waitForLoadState("load");
    assert.equal(new URL(page.url()).origin, gateway.publicUrl);
    assert.equal(new URL(page.url()).pathname, "/auth/callback");
    assert.equal(new URL(page.url()).searchParams.get("error"), "access_denied");
    assert.equal(res.status(), 403);
    assert.match(await page.title(), /Sign-in not completed/);
    assert.match((await page.textContent("body")) ?? "", /access_denied/);
    assert.ok(!traffic.some((e) => (e.response?.status() ?? 0) >= 500), "a response was a server error");

    assert.equal(await sessionCookie(), undefined, "a session cookie after a canceled login");
    const leftover = (await context.cookies()).filter((x) => x.name.startsWith(LOGIN_COOKIE_PREFIX));
    assert.deepEqual(leftover.map((x) => x.name), [], "login attempt cookie left after the callback");

    await page.goto(url("/"));
    assert.equal(await whoText(page), "Not signed in.");
  });

  test("two tabs signing in at once both end signed in", { timeout: TEST_TIMEOUT }, async () => {
    const tabA = await context.newPage();
    const tabB = await context.newPage();
    const trafficA = recordTraffic(tabA);
    const trafficB = recordTraffic(tabB);
    // Both reach the provider's form before either submits: two attempts
    // in flight, each with its own login cookie.
    await Promise.all([openProviderLogin(tabA), openProviderLogin(tabB)]);
    const attempts = (await context.cookies()).filter((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX));
    assert.equal(attempts.length, 2, `login attempt cookies: ${JSON.stringify(attempts.map((c) => c.name))}`);

    await submitCredentials(tabB, "bob");
    assert.match(await whoText(tabB), /^Signed in as Bob /);
    const first = await sessionCookie();
    assert.ok(first, "no session cookie after tab B's login");

    await submitCredentials(tabA, "alice");
    assert.match(await whoText(tabA), /^Signed in as Alice Liddell /);
    const second = await sessionCookie();
    assert.ok(second, "no session cookie after tab A's login");
    assert.notEqual(second.value, first.value, "the second login did not replace the session");

    // Tab B, reloaded, now shows the session of the second login.
    await tabB.reload();
    assert.match(await whoText(tabB), /^Signed in as Alice Liddell /);
    const { status, body } = await callGetSession(await openApp());
    assert.equal(status, 200, body);
    assert.equal((JSON.parse(body) as { user?: { subject?: string } }).user?.subject, "alice");
    for (const traffic of [trafficA, trafficB]) {
      assert.ok(!traffic.some((e) => (e.response?.status() ?? 0) >= 500), "a response was a server error");
    }
    const leftover = (await context.cookies()).filter((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX));
    assert.deepEqual(leftover.map((x) => x.name), [], "login attempt cookies left after both logins");

  });

  // The callback is a cross-site navigation from the provider, so Chromium
  // does not send the SameSite=Strict session cookie with it; the gateway
  // remembers the earlier session when the login starts (a same-site
  // navigation) and ends it once the new one exists.
  test(
    "a second login ends the session the browser had",
    { timeout: TEST_TIMEOUT },
    async () => {
      const page = await context.newPage();
      await signIn(page, "bob");
      const first = await sessionCookie();
      assert.ok(first, "no session cookie after the first login");

      const traffic = recordTraffic(page);
      // Signed in, the home page has no login link: start the second login
      // by typing its address.
      await page.goto(url("/auth/login?return_to=%2F"));
      await page.waitForURL(atProvider);
      await submitCredentials(page, "alice");
      assert.match(await whoText(page), /^Signed in as Alice Liddell /);
      const second = await sessionCookie();
      assert.ok(second && second.value !== first.value, "the second login did not replace the cookie");

      const callback = traffic.find(
        (e) => e.request.isNavigationRequest() && new URL(e.request.url()).pathname === "/auth/callback",
      );
      assert.ok(callback, "no callback recorded");
      const sentOnCallback = ((await callback.request.allHeaders())["cookie"] ?? "").includes(`${SESSION_COOKIE}=`);

      const stale = await fetch(gateway.baseUrl + GET_SESSION, {
        method: "POST",
        headers: { "Content-Type": "application/json", Cookie: `${SESSION_COOKIE}=${first.value}` },
        body: "{}",
      });
      const body = await stale.text();
      assert.equal(stale.status, 200, body);
      assert.equal(
        signedOutReason(body),
        "SESSION_END_REASON_SIGNED_OUT",
        `the first session is still alive after the second login (session cookie sent on the callback: ${sentOnCallback}): ${body}`,
      );
    },
  );
});
