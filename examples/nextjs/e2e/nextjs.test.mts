// The Next.js example in Chromium, in front of a real gateway and the demo
// world (see world.mts): sign-in back to the page asked for, server-rendered
// data in the first HTML, access tokens that expire every few seconds, a
// provider that refuses the refresh, two users at once, a Server Action, a
// client component, cross-site forgeries, and sign-out across tabs.
//
// Everything shares one set of processes; each test has its own browser
// contexts (cookie jars). The browser always uses http://localhost:P (the
// gateway's public URL); the provider is at http://127.0.0.1:Q, another
// site, as a real provider would be.
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page, type Request, type Response } from "playwright-core";
import { startOtherSite, startWorld, type OtherSite, type World } from "./world.mjs";

// Access tokens live this long at the demo provider; the gateway refreshes
// them when a call comes within a fifth of that of expiry.
const TOKEN_LIFETIME_MS = 4_000;
const NAV_TIMEOUT = 20_000;
const TEST_TIMEOUT = 120_000;
const SESSION_COOKIE = "__Host-custodian";

// The repository root, from .build/nextjs-e2e/nextjs.test.mjs.
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

// What identifies each demo user in a page, and what must never show in the
// other's pages. Names come from the provider (the session bar) and from the
// profiles backend (the dashboard); bob's seeded orders are o-1003, o-1008
// and o-1013, all others are alice's, and bob places none in these tests.
const BOB_ORDERS = new Set(["o-1003", "o-1008", "o-1013"]);
const USERS = {
  alice: { idpName: "Alice Liddell", email: "alice@example.com", marks: ["alice@example.com", "Alice Liddell", "Alice Martin"] },
  bob: { idpName: "Bob Builder", email: "bob@example.com", marks: ["bob@example.com", "Bob Builder", "Bob Janssen"] },
} as const;
type User = keyof typeof USERS;

let world: World;
let browser: Browser;
let other: OtherSite;
const contexts: BrowserContext[] = [];

before(async () => {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} must be set (scripts/nextjs.sh sets it)`);
    return v;
  };
  const started = Date.now();
  world = await startWorld({
    custodianBin: env("CUSTODIAN_BIN"),
    custodianDemoBin: env("CUSTODIAN_DEMO_BIN"),
    appDir: process.env.NEXTJS_APP_DIR ?? `${repoRoot}examples/nextjs`,
    nextBin: `${repoRoot}node_modules/next/dist/bin/next`,
    accessTokenLifetime: `${TOKEN_LIFETIME_MS / 1000}s`,
  });
  other = await startOtherSite();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
  console.log(`# processes and browser started in ${Date.now() - started} ms (app ${world.appUrl}, gateway ${world.gatewayUrl})`);
});

after(async () => {
  await browser?.close();
  await other?.stop();
  await world?.stop();
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

// withLogs wraps a test body so that a failure carries the processes' logs.
function withLogs(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error) err.message += `\n${world.logs()}`;
      throw err;
    }
  };
}

function app(path: string): string {
  return world.appUrl + path;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Watch records, for all pages of a context, what must never happen: a
// response of 400 or more, a failed request, a console error or an uncaught
// exception, and a Set-Cookie on any response of the app that is not the
// gateway's (/auth/*: login, callback, logout set the cookie; nothing else
// may).
interface Watch {
  problems: string[];
  nextSetCookies: string[];
  // Calls of the page's scripts to the RPC paths, in order.
  rpcs: { method: string; url: string; status?: number }[];
  ignore(page: Page): void;
  // settled waits for the header reads still under way.
  settled(): Promise<void>;
}

function isRpcPath(path: string): boolean {
  return /^\/(custodian\.v1|acme\.storefront\.v1)\.[A-Za-z]+\//.test(path);
}

function watch(ctx: BrowserContext): Watch {
  const ignored = new WeakSet<Page>();
  const answered = new WeakSet<Request>();
  const pending: Promise<void>[] = [];
  const w: Watch = {
    problems: [],
    nextSetCookies: [],
    rpcs: [],
    ignore: (p) => void ignored.add(p),
    settled: async () => {
      await Promise.all(pending);
    },
  };
  const attach = (page: Page) => {
    page.on("console", (m) => {
      if (m.type() === "error" && !ignored.has(page)) w.problems.push(`console error on ${page.url()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => {
      if (!ignored.has(page)) w.problems.push(`uncaught on ${page.url()}: ${e.message}`);
    });
    page.on("requestfailed", (r) => {
      // Aborted by the page itself, not failed: the icon's request when the
      // test navigates on, and a response whose rest the page no longer
      // reads (Next's router stops reading a Server Action's answer once it
      // has the redirect in it). The status of a response is checked above.
      const aborted = r.failure()?.errorText === "net::ERR_ABORTED";
      const dropped = aborted && (answered.has(r) || new URL(r.url()).pathname === "/icon.svg");
      if (!ignored.has(page) && !dropped) w.problems.push(`failed ${r.method()} ${r.url()} (${r.resourceType()}, on ${page.url()}): ${r.failure()?.errorText}`);
    });
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (u.origin === world.appUrl && isRpcPath(u.pathname)) w.rpcs.push({ method: r.method(), url: r.url() });
    });
    page.on("response", (r: Response) => {
      answered.add(r.request());
      const u = new URL(r.url());
      if (r.status() >= 400 && !ignored.has(page)) w.problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
      if (u.origin === world.appUrl && isRpcPath(u.pathname)) {
        const rec = w.rpcs.find((x) => x.url === r.url() && x.status === undefined);
        if (rec) rec.status = r.status();
      }
      if (u.origin !== world.appUrl || u.pathname.startsWith("/auth/")) return;
      pending.push(
        r.headersArray().then(
          (headers) => {
            for (const h of headers) {
              if (h.name.toLowerCase() === "set-cookie") w.nextSetCookies.push(`${u.pathname}${u.search}: ${h.value}`);
            }
          },
          () => undefined, // the page went away meanwhile
        ),
      );
    });
  };
  ctx.on("page", attach);
  for (const p of ctx.pages()) attach(p);
  return w;
}

async function assertClean(w: Watch): Promise<void> {
  await w.settled();
  assert.deepEqual(w.nextSetCookies, [], "the app (not the gateway's /auth/*) wrote cookies");
  assert.deepEqual(w.problems, [], "requests failed or pages logged errors");
}

async function newContext(): Promise<{ ctx: BrowserContext; w: Watch }> {
  const ctx = await browser.newContext();
  ctx.setDefaultNavigationTimeout(NAV_TIMEOUT);
  ctx.setDefaultTimeout(NAV_TIMEOUT);
  contexts.push(ctx);
  return { ctx, w: watch(ctx) };
}

function atProvider(u: URL): boolean {
  return u.origin === world.idpOrigin;
}

// submitLogin fills the provider's form and waits for the app's page at path.
async function submitLogin(page: Page, user: User, path: string): Promise<void> {
  await page.waitForURL(atProvider);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", "demo");
  await Promise.all([page.waitForURL(app(path)), page.click("button[name=login]")]);
}

// signInAt opens a protected page, is sent to the provider, signs in and
// lands back on that page.
async function signInAt(page: Page, user: User, path: string): Promise<void> {
  await page.goto(app(path));
  await submitLogin(page, user, path);
}

// firstHop returns the first response of the navigation that ended in res
// (the one the app answered before any redirect).
async function firstHop(res: Response): Promise<Response> {
  let req = res.request();
  while (req.redirectedFrom()) req = req.redirectedFrom()!;
  const first = await req.response();
  assert.ok(first, `no response for ${req.url()}`);
  return first;
}

// assertLoginRedirect checks that res is the app's redirect to its login
// with return_to=returnTo.
async function assertLoginRedirect(res: Response, returnTo: string): Promise<void> {
  assert.ok([302, 303, 307].includes(res.status()), `want a redirect, got ${res.status()} for ${res.url()}`);
  const location = new URL((await res.headerValue("location")) ?? "", res.url());
  assert.equal(location.origin, world.appUrl, `redirect to ${location}`);
  assert.equal(location.pathname, "/auth/login");
  assert.equal(location.searchParams.get("return_to"), returnTo);
}

// gotoHtml loads path and returns the document's HTML as the server sent it
// (before any script ran).
async function gotoHtml(page: Page, path: string): Promise<string> {
  const res = await page.goto(app(path));
  assert.ok(res, `no response for ${path}`);
  assert.equal(res.status(), 200, `${path}: ${res.status()} at ${page.url()}`);
  assert.equal(page.url(), app(path), `${path} ended at ${page.url()}`);
  return res.text();
}

function orderIds(html: string): string[] {
  return [...html.matchAll(/data-order-id="([^"]+)"/g)].map((m) => m[1]);
}

// assertOwnData checks that a page's HTML shows user's data and nothing of
// the other user.
function assertOwnData(user: User, path: string, html: string): void {
  const me = USERS[user];
  const them = USERS[user === "alice" ? "bob" : "alice"];
  assert.ok(html.includes(me.idpName), `${user} ${path}: own name missing from the session bar`);
  for (const mark of them.marks) assert.ok(!html.includes(mark), `${user} ${path}: shows "${mark}"`);
  if (path === "/dashboard") assert.ok(html.includes(me.email), `${user} ${path}: own e-mail missing`);
  if (path === "/dashboard" || path.startsWith("/orders")) {
    const ids = orderIds(html);
    assert.ok(ids.length > 0, `${user} ${path}: no orders`);
    for (const id of ids) assert.equal(BOB_ORDERS.has(id), user === "bob", `${user} ${path}: order ${id}`);
  }
}

async function tokenRequests(): Promise<{ succeeded: number; refused: number }> {
  const res = await fetch(world.adminUrl + "token-requests");
  assert.equal(res.status, 200);
  const all = (await res.json()) as Record<string, { succeeded?: number; refused?: number }>;
  const r = all["refresh_token"] ?? {};
  return { succeeded: r.succeeded ?? 0, refused: r.refused ?? 0 };
}

async function admin(path: string, form: Record<string, string>): Promise<void> {
  const res = await fetch(world.adminUrl + path, {
    method: "POST",
    headers: { "X-Demo-Admin": "1" },
    body: new URLSearchParams(form),
  });
  assert.ok(res.ok, `${path}: ${res.status} ${await res.text()}`);
}

// getSessionWith asks the gateway directly, as a server would, about the
// session of a cookie value.
async function getSessionWith(cookie: string): Promise<{ signedIn?: boolean; user?: { email?: string } }> {
  const res = await fetch(world.gatewayUrl + "/custodian.v1.SessionService/GetSession", {
    method: "POST",
    headers: { "content-type": "application/json", cookie: `${SESSION_COOKIE}=${cookie}` },
    body: "{}",
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { signedIn?: boolean; user?: { email?: string } };
}

async function sessionCookie(ctx: BrowserContext): Promise<string | undefined> {
  return (await ctx.cookies(world.appUrl)).find((c) => c.name === SESSION_COOKIE)?.value;
}

describe("examples/nextjs in Chromium", { timeout: TEST_TIMEOUT * 8 }, () => {
  test(
    "sign-in from a protected page lands back on it, with the user's data in the first HTML",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const { ctx, w } = await newContext();
      const page = await ctx.newPage();

      const toLogin = await page.goto(app("/dashboard"));
      assert.ok(toLogin);
      // proxy.ts sent the visitor without a session to login, with the way back.
      await assertLoginRedirect(await firstHop(toLogin), "/dashboard");
      await submitLogin(page, "alice", "/dashboard");

      // The server's HTML (as sent, before any script ran) already holds
      // alice's dashboard, and no script of the page called the gateway.
      const before = w.rpcs.length;
      const html = await gotoHtml(page, "/dashboard");
      assertOwnData("alice", "/dashboard", html);
      assert.match(html, /id="display-name">Alice Martin/);
      assert.match(html, /id="points">\d+</);
      assert.equal(await page.textContent("#email"), "alice@example.com");
      assert.equal(await page.textContent("#session-user"), "Alice Liddell");
      assert.deepEqual(w.rpcs.slice(before), [], "the dashboard fetched data from the browser");
      await assertClean(w);
    }),
  );

  test(
    "server-rendered pages across several token refreshes: no Set-Cookie, no failed request",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const { ctx, w } = await newContext();
      const page = await ctx.newPage();
      await signInAt(page, "alice", "/orders");
      const cookie = await sessionCookie(ctx);
      assert.ok(cookie);

      const refreshesBefore = (await tokenRequests()).succeeded;
      const pages = ["/dashboard", "/orders", "/orders/o-1001", "/profile", "/", "/products"];
      const ROUNDS = 3;
      for (let round = 0; round < ROUNDS; round++) {
        // Past the access token's expiry: the next call makes the gateway
        // refresh, out of the browser's sight.
        await sleep(TOKEN_LIFETIME_MS + 300);
        for (const path of pages) {
          const html = await gotoHtml(page, path);
          assert.ok(html.includes("Alice Liddell"), `round ${round} ${path}: not signed in`);
          if (path === "/dashboard") assertOwnData("alice", path, html);
        }
      }
      // Paging: the second page of orders by its token in the query.
      await gotoHtml(page, "/orders");
      const second = await page.getAttribute("#next-page", "href");
      assert.ok(second?.startsWith("/orders?page_token="), `next page link ${second}`);
      const html2 = await gotoHtml(page, second!);
      assertOwnData("alice", second!, html2);

      const refreshes = (await tokenRequests()).succeeded - refreshesBefore;
      assert.ok(refreshes >= ROUNDS, `only ${refreshes} refreshes in ${ROUNDS} rounds`);
      assert.equal(await sessionCookie(ctx), cookie, "the session cookie changed");
      await assertClean(w);
    }),
  );

  test(
    "a refresh the provider refuses sends the next page to login and back, with no cookie from Next",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const { ctx, w } = await newContext();
      const page = await ctx.newPage();
      await signInAt(page, "alice", "/dashboard");
      assertOwnData("alice", "/dashboard", await gotoHtml(page, "/dashboard"));

      const refusedBefore = (await tokenRequests()).refused;
      await admin("revoke-tokens", { subject: "alice" });
      await sleep(TOKEN_LIFETIME_MS + 300);
      assert.ok(await sessionCookie(ctx), "the browser still has its (now dead) session cookie");

      const target = "/orders/o-1001";
      const res = await page.goto(app(target));
      assert.ok(res);
      // The cookie passed proxy.ts; the page's GetOrder met the refused
      // refresh; withLogin redirected to login with the way back.
      await assertLoginRedirect(await firstHop(res), target);
      assert.ok((await tokenRequests()).refused > refusedBefore, "the provider refused no refresh");
      await submitLogin(page, "alice", target);
      assert.equal(await page.textContent("#order-id"), "o-1001");
      await assertClean(w);
    }),
  );

  test(
    "alice and bob render the same pages at once, many times: each sees only their own data",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const users: User[] = ["alice", "bob"];
      const paths = ["/dashboard", "/orders", "/profile"];
      const tabs: { user: User; path: string; page: Page }[] = [];
      const watches: Watch[] = [];
      for (const user of users) {
        const { ctx, w } = await newContext();
        watches.push(w);
        const first = await ctx.newPage();
        await signInAt(first, user, paths[0]);
        tabs.push({ user, path: paths[0], page: first });
        for (const path of paths.slice(1)) tabs.push({ user, path, page: await ctx.newPage() });
      }
      const ROUNDS = 10;
      for (let round = 0; round < ROUNDS; round++) {
        await Promise.all(
          tabs.map(async ({ user, path, page }) => assertOwnData(user, path, await gotoHtml(page, path))),
        );
      }
      for (const w of watches) await assertClean(w);
    }),
  );

  test(
    "a Server Action places an order and a client component saves the profile; another site can do neither",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const { ctx, w } = await newContext();
      const page = await ctx.newPage();
      const orderPath = "/orders/new?product=p-0002";
      await signInAt(page, "alice", orderPath);
      const newestBefore = orderIds(await gotoHtml(page, "/orders"))[0];

      // The Server Action, from the app's own form.
      await gotoHtml(page, orderPath);
      await page.selectOption("select[name=quantity]", "2");
      await Promise.all([page.waitForURL(/\/orders\/o-\d+$/), page.click("#place-order-submit")]);
      const placed = (await page.textContent("#order-id")) ?? "";
      assert.match(placed, /^o-\d+$/);
      assert.notEqual(placed, newestBefore);
      const detail = await gotoHtml(page, `/orders/${placed}`);
      assert.match(detail, /data-product-id="p-0002"/);
      assert.match(detail, /× <!-- -->2|× 2/);
      assert.equal(orderIds(await gotoHtml(page, "/orders"))[0], placed, "the new order is not the newest");

      // The client component, through the browser transport.
      await gotoHtml(page, "/profile");
      await page.waitForSelector("#profile-form[data-ready='1']");
      const name = `Alice Martin ${randomUUID().slice(0, 8)}`;
      await page.fill("input[name=displayName]", name);
      const rpcsBefore = w.rpcs.length;
      await page.click("#profile-save");
      await page.waitForSelector("#profile-status:text-is('Saved.')");
      const calls = w.rpcs.slice(rpcsBefore);
      assert.deepEqual(
        calls.map((c) => [c.method, new URL(c.url).pathname, c.status]),
        [["POST", "/acme.storefront.v1.AccountService/UpdateProfile", 200]],
      );
      assert.match(await gotoHtml(page, "/profile"), new RegExp(`id="profile-name">${name}<`));

      // Another site, in the same browser as signed-in alice.
      await gotoHtml(page, "/orders/new?product=p-0003");
      const fields = await page.$$eval("#place-order input[type=hidden]", (els) =>
        (els as HTMLInputElement[]).map((e) => [e.name, e.value] as [string, string]),
      );
      assert.ok(fields.some(([n]) => n.startsWith("$ACTION_ID_")), `no action id among ${JSON.stringify(fields)}`);
      const formHtml = (action: string, key: string) =>
        `<form id="f" method="POST" enctype="multipart/form-data" action="${action}">` +
        fields
          .map(([n, v]) => `<input type="hidden" name="${n}" value="${n === "idempotencyKey" ? key : v}">`)
          .join("") +
        `<input type="hidden" name="quantity" value="1"></form>`;
      other.page(
        "/forge-order",
        `<!doctype html><title>win a prize</title>${formHtml(app("/orders/new?product=p-0003"), randomUUID())}` +
          `<script>document.getElementById("f").submit()</script>`,
      );
      const attacker = await ctx.newPage();
      w.ignore(attacker); // its failures are the point
      await attacker.goto(other.origin + "/forge-order");
      await attacker.waitForURL((u) => u.origin !== other.origin);
      assert.equal(orderIds(await gotoHtml(page, "/orders"))[0], placed, "the forged Server Action placed an order");

      const rpcUrl = app("/acme.storefront.v1.AccountService/UpdateProfile");
      // forge calls UpdateProfile from p's page as another site's script
      // would: a CORS request with credentials (and the CSRF header, which
      // needs a preflight) and, unless sameOrigin, a "simple" no-cors one.
      const forge = async (p: Page, displayName: string, sameOrigin = false) =>
        p.evaluate(
          async ({ url, displayName, sameOrigin }) => {
            const body = JSON.stringify({ displayName, locale: "en-GB" });
            const out: string[] = [];
            try {
              const r = await fetch(url, {
                method: "POST",
                credentials: "include",
                headers: { "content-type": "application/json", "x-csrf": "1" },
                body,
              });
              await r.text();
              out.push(`cors: ${r.status}`);
            } catch (e) {
              out.push(`cors: blocked (${String(e)})`);
            }
            if (sameOrigin) return out;
            try {
              await fetch(url, { method: "POST", mode: "no-cors", credentials: "include", body });
              out.push("no-cors: sent");
            } catch (e) {
              out.push(`no-cors: blocked (${String(e)})`);
            }
            return out;
          },
          { url: rpcUrl, displayName, sameOrigin },
        );
      other.page("/blank", "<!doctype html><title>other site</title>");
      await attacker.goto(other.origin + "/blank");
      const attempts = await forge(attacker, "pwned by another site");
      assert.match(attempts[0], /^cors: blocked/, attempts.join("; "));
      // A JSON body in a cross-site form POST (enctype text/plain).
      other.page(
        "/forge-profile",
        `<!doctype html><form id="f" method="POST" enctype="text/plain" action="${rpcUrl}">` +
          `<input name='{"displayName":"pwned","x":"' value='"}'></form>` +
          `<script>document.getElementById("f").submit()</script>`,
      );
      await attacker.goto(other.origin + "/forge-profile");
      await attacker.waitForURL((u) => u.origin !== other.origin);
      assert.match(await gotoHtml(page, "/profile"), new RegExp(`id="profile-name">${name}<`), "another site changed the profile");

      // The same requests from the app's own origin do work: what stopped them
      // above was their origin.
      const control = `Alice Martin ${randomUUID().slice(0, 8)}`;
      assert.deepEqual(await forge(page, control, true), ["cors: 200"]);
      assert.match(await gotoHtml(page, "/profile"), new RegExp(`id="profile-name">${control}<`));
      await page.evaluate((html) => {
        document.body.insertAdjacentHTML("beforeend", html);
        (document.getElementById("f") as HTMLFormElement).submit();
      }, formHtml(app("/orders/new?product=p-0003"), randomUUID()));
      await page.waitForURL(/\/orders\/o-\d+$/);
      const sameSite = (await page.textContent("#order-id")) ?? "";
      assert.notEqual(sameSite, placed, "the same form from the app's origin placed no order");
      await assertClean(w);
    }),
  );

  test(
    "sign-out in one tab ends the session in every tab",
    { timeout: TEST_TIMEOUT },
    withLogs(async () => {
      const { ctx, w } = await newContext();
      const one = await ctx.newPage();
      await signInAt(one, "alice", "/dashboard");
      const two = await ctx.newPage();
      assertOwnData("alice", "/orders", await gotoHtml(two, "/orders"));
      const cookie = await sessionCookie(ctx);
      assert.ok(cookie);
      assert.equal((await getSessionWith(cookie)).signedIn, true);

      await gotoHtml(one, "/dashboard");
      await Promise.all([one.waitForURL(app("/")), one.click("#sign-out")]);
      assert.match((await one.textContent("#who")) ?? "", /^Not signed in\./);

      // The other tab's next page: signed out, sent to login.
      const res = await two.goto(app("/orders"));
      assert.ok(res);
      await assertLoginRedirect(await firstHop(res), "/orders");
      await two.waitForURL(atProvider);
      const home = await gotoHtml(two, "/");
      assert.match(home, /id="who">Not signed in\./);
      assert.ok(!home.includes("Alice Liddell"), "home still names alice");
      // Ended at the gateway, not only forgotten by the browser.
      const after = await getSessionWith(cookie);
      assert.notEqual(after.signedIn, true);
      assert.equal(after.user, undefined);
      await assertClean(w);
    }),
  );
});
