// A Vite app on the packages (tests/ts/vite: @custodian-bff/api,
// @custodian-bff/acme and the core of @custodian-bff/nextjs), built with
// `vite build`: the bundle holds the public schemas and no internal one,
// and it runs in Chromium on the gateway's origin: signed out it goes to the
// login with return_to, and after signing in it is back, showing alice's data.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import type { Browser } from "playwright-core";
import { launchChromium } from "./chromium.js";
import { startGateway, type Gateway } from "./gateway.js";

// The repository root, from .build/ts/tests/ts/vite.test.js.
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const appDir = join(repoRoot, "tests/ts/vite");
const outDir = join(repoRoot, ".build/vite-app");
// Where the app is served on the gateway's public origin.
const BASE = "/vite-app/";
const NAV_TIMEOUT = 15_000;

// The embedded file descriptors (protobuf-es keeps them as base64 strings)
// of every bundled JavaScript file, decoded.
async function bundledDescriptors(): Promise<string> {
  const assets = join(outDir, "assets");
  let text = "";
  for (const name of await readdir(assets)) {
    if (extname(name) !== ".js") continue;
    const js = await readFile(join(assets, name), "utf8");
    for (const [, b64] of js.matchAll(/["'`]([A-Za-z0-9+/]{40,}={0,2})["'`]/g)) {
      text += Buffer.from(b64, "base64").toString("latin1") + "\n";
    }
  }
  return text;
}

describe("a Vite app on the packages", { timeout: 120_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;

  before(async () => {
    [gateway, browser] = await Promise.all([
      startGateway(),
      launchChromium(),
      build({
        root: appDir,
        base: BASE,
        configFile: false,
        logLevel: "warn",
        build: { outDir, emptyOutDir: true },
      }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test("the bundle holds the public schemas, none of the backends'", async () => {
    const descriptors = await bundledDescriptors();
    for (const want of [
      "acme/storefront/v1/product.proto",
      "acme.storefront.v1",
      "ProductService",
      "AccountService",
      "custodian/v1/session.proto",
      "SessionService",
    ]) {
      assert.ok(descriptors.includes(want), `${want} not in the bundle`);
    }
    for (const internal of ["acme.catalog", "acme.orders", "acme.profiles", "acme.loyalty"]) {
      assert.ok(!descriptors.includes(internal), `${internal} in the bundle`);
    }
    const js = (await readdir(join(outDir, "assets"))).filter((n) => n.endsWith(".js"));
    for (const name of js) {
      const code = await readFile(join(outDir, "assets", name), "utf8");
      assert.doesNotMatch(code, /next\/(headers|navigation|server)|server-only/, `${name} pulls in Next.js`);
    }
  });

  test("runs in Chromium: login with return_to, then alice's data", async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(NAV_TIMEOUT);
    try {
      await context.route(`${gateway.publicUrl}${BASE}**`, async (route) => {
        const path = new URL(route.request().url()).pathname.slice(BASE.length) || "index.html";
        const type = path.endsWith(".js") ? "text/javascript" : path.endsWith(".css") ? "text/css" : "text/html";
        await route.fulfill({ status: 200, contentType: type, body: await readFile(join(outDir, path)) });
      });
      const page = await context.newPage();
      const idp = new URL(gateway.baseUrl).origin;
      await page.goto(`${gateway.publicUrl}${BASE}?from=vite`);
      // Signed out, GetDashboard is unauthenticated: the app goes to the login.
      await page.waitForURL((u) => u.origin === idp && u.pathname.startsWith("/demo/idp/"));
      await page.fill("input[name=username]", "alice");
      await page.fill("input[name=password]", "demo");
      await page.click("button[name=login]");
      await page.waitForURL(`${gateway.publicUrl}${BASE}?from=vite`);
      await page.waitForFunction(() => (document.getElementById("out")?.textContent ?? "") !== "");
      assert.match((await page.textContent("#out")) ?? "", /^Alice Liddell: \d+ orders, 5 products$/);
    } finally {
      await context.close();
    }
  });
});
