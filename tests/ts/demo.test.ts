// Clicks through the demo store in a real Chromium, against the real
// binary (CUSTODIAN_BIN) in demo mode: products for an anonymous visitor,
// sign-in at the demo provider, the dashboard and its waterfall, orders
// with paging and detail, placing an order, editing the profile, the fault
// buttons with a partial dashboard and a red span, a cross-site form post
// refused, and sign-out.
//
// It saves screenshots of the dashboard in .build/screenshots; with
// DEMO_SCREENSHOT set (scripts/screenshot.sh), the partial dashboard also
// goes to that path, the one in docs/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium } from "./chromium.js";
import { startGateway, type Gateway } from "./gateway.js";

const NAV_TIMEOUT = 15_000;
const TEST_TIMEOUT = 120_000;
const SESSION_COOKIE = "__Host-custodian";

// The repository root, from .build/ts/tests/ts/demo.test.js.
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const screenshotDir = `${repoRoot}.build/screenshots`;

let gateway: Gateway;
let browser: Browser;

before(async () => {
  gateway = await startGateway();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

function url(path: string): string {
  return gateway.publicUrl + path;
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? "").replace(/\s+/g, " ").trim();
}

// Every status the browser got from the gateway, to find server errors.
function recordStatuses(page: Page): number[] {
  const statuses: number[] = [];
  page.on("response", (r) => {
    if (r.url().startsWith(gateway.publicUrl)) statuses.push(r.status());
  });
  return statuses;
}

// wantNoSecrets fails when the page shows the session cookie's value, a
// token or a backend's internal host name.
async function wantNoSecrets(page: Page, context: BrowserContext, what: string): Promise<void> {
  const html = await page.content();
  const session = (await context.cookies(gateway.publicUrl)).find((c) => c.name === SESSION_COOKIE);
  if (session) assert.ok(!html.includes(session.value), `${what}: the page shows the session cookie`);
  assert.doesNotMatch(html, /\.acme\.internal/, `${what}: the page shows an internal host`);
  assert.doesNotMatch(html, /acme\.(orders|profiles|loyalty|catalog)\./, `${what}: the page shows a backend's schema`);
  assert.doesNotMatch(html, /eyJ[A-Za-z0-9_-]{10,}/, `${what}: the page shows a token`);
}

// Names of the waterfall's rows, with their attributes.
async function waterfallRows(page: Page, selector = "#waterfall li.span"): Promise<string[]> {
  return (await page.locator(selector).allTextContents()).map((s) => s.replace(/\s+/g, " ").trim());
}

describe("demo store", { timeout: TEST_TIMEOUT }, () => {
  test("a person clicks through the store", { timeout: TEST_TIMEOUT }, async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    context.setDefaultNavigationTimeout(NAV_TIMEOUT);
    context.setDefaultTimeout(NAV_TIMEOUT);
    const page = await context.newPage();
    const statuses = recordStatuses(page);
    try {
      // Anonymous: products, a page at a time, no order buttons.
      await page.goto(url("/products"));
      assert.equal(await text(page, "#who"), "Not signed in.");
      assert.equal(await page.locator("#products li.product").count(), 8);
      assert.equal(await page.locator('form[action="/orders"]').count(), 0, "order buttons for an anonymous visitor");
      const firstName = await text(page, "#products li.product h3");
      await page.click("#next");
      await page.waitForURL((u) => u.pathname === "/products" && u.searchParams.has("page"));
      assert.ok(await page.isVisible("#first"), "no link back to the first page");
      assert.notEqual(await text(page, "#products li.product h3"), firstName, "page 2 shows page 1");
      assert.ok((await waterfallRows(page)).some((r) => r.includes("ProductService/ListProducts")), "no ListProducts span");

      // Sign in as alice at the demo provider, back on the dashboard.
      await page.goto(url("/"));
      await page.click("#login");
      await page.waitForSelector("input[name=username]");
      await page.fill("input[name=username]", "alice");
      await page.fill("input[name=password]", "demo");
      await page.click("button[name=login]");
      await page.waitForURL((u) => u.origin === gateway.publicUrl && u.pathname === "/");
      await page.waitForSelector("#dashboard");
      assert.match(await text(page, "#who"), /^Signed in as Alice Liddell \(.+@.+\)$/);
      assert.match(await text(page, "#dashboard"), /Alice Martin/);
      assert.match(await text(page, "#points"), /^\d+$/);
      assert.equal(await page.locator("#recent-orders tr.order").count(), 5);
      assert.equal(await page.locator("#missing").count(), 0, "a healthy dashboard with missing sections");
      const rows = await waterfallRows(page);
      assert.ok(rows.some((r) => r.includes("AccountService/GetDashboard")), `no GetDashboard span in ${rows.join(" | ")}`);
      assert.ok(
        (await page.locator('#waterfall li.span[data-kind="server"]').count()) >= 2,
        "no server spans for GetSession and GetDashboard",
      );
      const clients = await waterfallRows(page, '#waterfall li.span[data-kind="client"]');
      for (const backend of ["profiles", "orders", "loyalty"]) {
        assert.ok(clients.some((r) => r.includes(`backend=${backend}`)), `no client span of ${backend} in ${clients.join(" | ")}`);
      }
      assert.equal(await page.locator("#waterfall li.span.failed").count(), 0, "a failed span on a healthy dashboard");
      await wantNoSecrets(page, context, "dashboard");
      await mkdir(screenshotDir, { recursive: true });
      await page.screenshot({ path: `${screenshotDir}/demo-dashboard.png`, fullPage: true });

      // Again: the exchanged token and the products come from the caches.
      await page.reload();
      await page.waitForSelector("#dashboard");
      const again = await waterfallRows(page);
      for (const cache of ["exchanged_token", "catalog_products"]) {
        assert.ok(
          again.some((r) => r.includes("cache=hit") && r.includes(`cache name=${cache}`)),
          `no cache hit of ${cache} in ${again.join(" | ")}`,
        );
      }

      // Orders, a page at a time, and one order's detail.
      await page.click('nav a[href="/orders"]');
      await page.waitForSelector("#orders");
      assert.equal(await page.locator("#orders tr.order").count(), 5);
      const firstOrder = await page.locator("#orders tr.order").first().getAttribute("data-id");
      await page.click("#next");
      await page.waitForURL((u) => u.pathname === "/orders" && u.searchParams.has("page"));
      assert.equal(await page.locator("#orders tr.order").count(), 5);
      const secondPageOrder = await page.locator("#orders tr.order").first().getAttribute("data-id");
      assert.notEqual(secondPageOrder, firstOrder, "page 2 of the orders shows page 1");
      await page.click(`#orders tr.order[data-id="${secondPageOrder}"] a`);
      await page.waitForURL((u) => u.pathname === `/orders/${secondPageOrder}`);
      assert.equal(await text(page, "#order-id"), secondPageOrder);
      assert.ok((await page.locator("#order tr.line").count()) >= 1, "an order without lines");
      assert.ok((await waterfallRows(page)).some((r) => r.includes("AccountService/GetOrder")), "no GetOrder span");

      // Place an order from the products page and find it in the list.
      await page.click('nav a[href="/products"]');
      const form = page.locator('#products li.product form[action="/orders"]').first();
      await form.locator('input[name="quantity"]').fill("3");
      await form.locator('button[name="order"]').click();
      await page.waitForSelector("#notice");
      assert.match(await text(page, "#notice"), /is placed/);
      const placed = await text(page, "#order-id");
      assert.match(placed, /^o-\d+$/);
      assert.ok((await waterfallRows(page)).some((r) => r.includes("AccountService/PlaceOrder")), "no PlaceOrder span");
      await page.click('nav a[href="/orders"]');
      await page.waitForSelector("#orders");
      assert.equal(await page.locator("#orders tr.order").first().getAttribute("data-id"), placed, "the new order is not first in the list");

      // Edit the profile and see it on the dashboard.
      await page.click('nav a[href="/profile"]');
      await page.fill('input[name="display_name"]', "Alice in Wonderland");
      await page.click('button[name="save"]');
      await page.waitForSelector("#notice");
      assert.equal(await text(page, "#profile-name"), "Alice in Wonderland");
      await page.click('nav a[href="/"]');
      await page.waitForSelector("#dashboard");
      assert.match(await text(page, "#dashboard"), /Alice in Wonderland/);

      // Make loyalty fail: the dashboard answers without it, and its span is red.
      await page.click('#fault-loyalty button[value="failing"]');
      await page.waitForSelector("#dashboard");
      assert.equal(new URL(page.url()).pathname, "/");
      assert.equal(await text(page, "#fault-loyalty td.state"), "failing");
      assert.match(await text(page, "#missing"), /loyalty/);
      assert.ok(await page.isVisible("#loyalty-missing"), "the loyalty card does not say it is missing");
      assert.equal(await page.locator("#recent-orders tr.order").count(), 5, "the rest of the dashboard is gone");
      const failed = await waterfallRows(page, "#waterfall li.span.failed");
      assert.ok(failed.some((r) => r.includes("backend=loyalty")), `no failed loyalty span in ${failed.join(" | ")}`);
      const red = await page
        .locator("#waterfall li.span.failed .bar")
        .first()
        .evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(red, "rgb(229, 57, 53)", "the failed span's bar is not red");
      await wantNoSecrets(page, context, "partial dashboard");
      await page.screenshot({ path: `${screenshotDir}/demo-dashboard-partial.png`, fullPage: true });
      if (process.env.DEMO_SCREENSHOT) {
        await copyFile(`${screenshotDir}/demo-dashboard-partial.png`, process.env.DEMO_SCREENSHOT);
      }
      await page.click('#fault-loyalty button[value="normal"]');
      await page.waitForSelector("#dashboard");
      assert.equal(await text(page, "#fault-loyalty td.state"), "normal");
      assert.equal(await page.locator("#missing").count(), 0);

      // A page of another site posting the profile form with the session
      // is refused by the store.
      const attacker = "http://attacker.test/";
      await context.route(attacker, (route) =>
        route.fulfill({
          status: 200,
          contentType: "text/html; charset=utf-8",
          body: `<!doctype html><form method="post" action="${url("/profile")}"><input name="display_name" value="Pwned"><button id="go">win a prize</button></form>`,
        }),
      );
      const evil = await context.newPage();
      await evil.goto(attacker);
      const [refused] = await Promise.all([
        evil.waitForResponse((r) => r.url() === url("/profile") && r.request().method() === "POST"),
        evil.click("#go"),
      ]);
      assert.equal(refused.status(), 403);
      await evil.close();
      await page.goto(url("/profile"));
      assert.equal(await text(page, "#profile-name"), "Alice in Wonderland", "the cross-site post changed the profile");

      // Sign out: back on the store, signed out.
      await page.goto(url("/"));
      await page.click("#logout");
      await page.waitForURL((u) => u.origin === gateway.publicUrl && u.pathname === "/");
      await page.waitForSelector("#who");
      assert.equal(await text(page, "#who"), "Not signed in.");
      assert.equal((await context.cookies(gateway.publicUrl)).filter((c) => c.name === SESSION_COOKIE).length, 0);

      assert.deepEqual(statuses.filter((s) => s >= 500), [], "a page was a server error");
    } catch (err) {
      await mkdir(screenshotDir, { recursive: true });
      await page.screenshot({ path: `${screenshotDir}/demo-failure.png`, fullPage: true }).catch(() => {});
      throw err;
    } finally {
      await context.close();
    }
  });
});
