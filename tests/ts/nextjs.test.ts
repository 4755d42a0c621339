// @custodian-bff/nextjs's core entry (no Next.js in it), imported as a
// package by plain Node: the server transport's header forwarding and
// no-store fetches against a recording server, then getSession, the typed
// session end and the login link against a real demo gateway.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createBrowserTransport,
  createServerTransport,
  fetchSession,
  loginHref,
  sessionEndOf,
} from "@custodian-bff/nextjs";
import { SessionEndReason, SessionService } from "@custodian-bff/api/custodian/v1/session_pb";
import { AccountService } from "@custodian-bff/acme/acme/storefront/v1/account_pb";
import { ProductService } from "@custodian-bff/acme/acme/storefront/v1/product_pb.js";
import { startGateway, type Gateway } from "./gateway.js";
import { signIn, SESSION_COOKIE } from "./login.js";

// A stand-in for the gateway that records each request's headers and gives
// one fixed Connect answer.
interface Recorder {
  url: string;
  requests: IncomingHttpHeaders[];
  answer: { status: number; contentType: string; body: string };
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const rec: Omit<Recorder, "url" | "close"> = {
    requests: [],
    // An empty binary message: GetSessionResponse{} (signed out).
    answer: { status: 200, contentType: "application/proto", body: "" },
  };
  const server: Server = createServer((req, res) => {
    rec.requests.push(req.headers);
    req.resume();
    req.on("end", () => {
      res.writeHead(rec.answer.status, { "content-type": rec.answer.contentType });
      res.end(rec.answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(rec, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

// recordingFetch wraps the global fetch and keeps each call's init.
function recordingFetch(): { fetch: typeof globalThis.fetch; inits: RequestInit[] } {
  const inits: RequestInit[] = [];
  const realFetch = globalThis.fetch;
  return {
    inits,
    fetch: (input, init) => {
      inits.push(init ?? {});
      return realFetch(input, init);
    },
  };
}

// An incoming browser request as Next.js's headers() shows it: the two
// headers to forward among many that must stay behind.
const INCOMING = {
  cookie: `${SESSION_COOKIE}=abc; theme=dark`,
  "x-forwarded-for": "203.0.113.7",
  authorization: "Bearer must-not-leak",
  origin: "https://evil.example",
  referer: "https://app.example/orders",
  "user-agent": "Mozilla/5.0 (the browser)",
  "accept-language": "de-CH",
  "x-forwarded-host": "evil.example",
  "x-custodian-path": "/orders",
  "x-csrf": "1",
  "next-action": "abc123",
};

describe("createServerTransport", () => {
  let rec: Recorder;
  before(async () => {
    rec = await startRecorder();
  });
  after(async () => {
    await rec?.close();
  });

  test("forwards exactly cookie and x-forwarded-for, read per call, with cache no-store", async () => {
    const spy = recordingFetch();
    let incoming = new Headers();
    const transport = createServerTransport({ baseUrl: rec.url, requestHeaders: () => incoming, fetch: spy.fetch });
    const client = createClient(SessionService, transport);

    rec.requests.length = 0;
    await client.getSession({});
    incoming = new Headers(INCOMING);
    await client.getSession({});
    incoming = new Headers({ cookie: `${SESSION_COOKIE}=other-user`, "x-forwarded-for": "198.51.100.2" });
    await client.getSession({});

    const [bare, full, other] = rec.requests;
    assert.equal(bare.cookie, undefined, "a cookie without an incoming one");
    assert.equal(bare["x-forwarded-for"], undefined);
    assert.equal(full.cookie, INCOMING.cookie);
    assert.equal(full["x-forwarded-for"], INCOMING["x-forwarded-for"]);
    // Compared with the call without incoming headers, only the two differ.
    const added = Object.keys(full).filter((k) => !(k in bare)).sort();
    assert.deepEqual(added, ["cookie", "x-forwarded-for"]);
    for (const [k, v] of Object.entries(bare)) {
      if (k !== "content-length") assert.deepEqual(full[k], v, `header ${k} changed by the incoming request`);
    }
    assert.notEqual(full["user-agent"], INCOMING["user-agent"]);
    assert.equal(full.origin, undefined, "Origin forwarded: the gateway's CSRF guard would refuse");
    // Each call reads the request it is made for: nothing kept from the last.
    assert.equal(other.cookie, `${SESSION_COOKIE}=other-user`);
    assert.equal(other["x-forwarded-for"], "198.51.100.2");
    assert.equal(full["content-type"], "application/proto", "binary by default");

    assert.equal(spy.inits.length, 3);
    for (const init of spy.inits) assert.equal(init.cache, "no-store");
  });

  test("awaits an async requestHeaders, as next/headers' headers() is", async () => {
    rec.requests.length = 0;
    rec.answer = { status: 200, contentType: "application/json", body: "{}" };
    const transport = createServerTransport({
      baseUrl: rec.url,
      requestHeaders: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return new Headers({ cookie: "a=1" });
      },
      useBinaryFormat: false,
    });
    await createClient(SessionService, transport).getSession({});
    assert.equal(rec.requests[0].cookie, "a=1");
    assert.equal(rec.requests[0]["content-type"], "application/json");
  });
});

describe("createBrowserTransport", () => {
  test("calls the origin as JSON with X-CSRF: 1 and credentials same-origin", async () => {
    const rec = await startRecorder();
    const realFetch = globalThis.fetch;
    const spy = recordingFetch();
    globalThis.fetch = spy.fetch;
    try {
      rec.answer = { status: 200, contentType: "application/json", body: "{}" };
      await createClient(SessionService, createBrowserTransport({ baseUrl: rec.url })).getSession({});
    } finally {
      globalThis.fetch = realFetch;
      await rec.close();
    }
    assert.equal(rec.requests.length, 1);
    assert.equal(rec.requests[0]["x-csrf"], "1");
    assert.equal(rec.requests[0]["content-type"], "application/json");
    assert.equal(spy.inits[0].credentials, "same-origin");
  });
});

describe("fetchSession against a stub", () => {
  let rec: Recorder;
  let transport: Transport;
  before(async () => {
    rec = await startRecorder();
    transport = createServerTransport({ baseUrl: rec.url, requestHeaders: () => new Headers() });
  });
  after(async () => {
    await rec?.close();
  });

  test("a signed-out answer is null", async () => {
    rec.answer = { status: 200, contentType: "application/proto", body: "" };
    assert.equal(await fetchSession(transport), null);
  });

  test("an unauthenticated error is null", async () => {
    rec.answer = { status: 401, contentType: "application/json", body: '{"code":"unauthenticated","message":"no session"}' };
    assert.equal(await fetchSession(transport), null);
  });

  test("any other error is thrown", async () => {
    rec.answer = { status: 503, contentType: "application/json", body: '{"code":"unavailable","message":"store down"}' };
    await assert.rejects(fetchSession(transport), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      return true;
    });
  });
});

describe("against the demo gateway", () => {
  let gateway: Gateway;
  let alice: string;
  let bob: string;

  before(async () => {
    gateway = await startGateway();
    [alice, bob] = (await Promise.all([signIn(gateway, "alice"), signIn(gateway, "bob")])).map((s) => s.cookie);
  });
  after(async () => {
    await gateway?.stop();
  });

  // serverTransport stands for @custodian-bff/nextjs/server's: the incoming
  // request's headers come from a request scope, as next/headers' do.
  const scope = new AsyncLocalStorage<Headers>();
  function serverTransport(spy?: { fetch: typeof globalThis.fetch }): Transport {
    return createServerTransport({
      baseUrl: gateway.baseUrl,
      requestHeaders: () => scope.getStore() ?? new Headers(),
      fetch: spy?.fetch,
    });
  }

  test("getSession: a signed-in cookie, forwarded, is that user; fetches are no-store", async () => {
    const spy = recordingFetch();
    const transport = serverTransport(spy);
    const user = await scope.run(new Headers({ cookie: alice, "x-forwarded-for": "203.0.113.7" }), () =>
      fetchSession(transport),
    );
    assert.equal(user?.subject, "alice");
    assert.equal(user?.name, "Alice Liddell");
    const dashboard = await scope.run(new Headers({ cookie: alice }), () =>
      createClient(AccountService, transport).getDashboard({}),
    );
    assert.ok(dashboard.profile, "no profile on alice's dashboard");
    assert.ok(spy.inits.length >= 2);
    for (const init of spy.inits) assert.equal(init.cache, "no-store");
  });

  test("getSession: anonymous and unknown sessions are null, not errors", async () => {
    const transport = serverTransport();
    assert.equal(await scope.run(new Headers(), () => fetchSession(transport)), null);
    const unknown = new Headers({ cookie: `${SESSION_COOKIE}=${"A".repeat(43)}` });
    assert.equal(await scope.run(unknown, () => fetchSession(transport)), null);
  });

  test("the gateway's GetSession answers anonymous callers signed out, with a login URL", async () => {
    const res = await scope.run(new Headers(), () => createClient(SessionService, serverTransport()).getSession({}));
    assert.equal(res.signedIn, false);
    assert.equal(res.user, undefined);
    assert.equal(res.endReason, SessionEndReason.NO_SESSION);
    assert.equal(res.loginUrl, `${gateway.publicUrl}/auth/login`);
  });

  test("alice and bob at once through one transport each see their own data", async () => {
    const transport = serverTransport();
    const client = createClient(SessionService, transport);
    const calls = Array.from({ length: 40 }, (_, i) => {
      const [who, cookie] = i % 2 === 0 ? ["alice", alice] : ["bob", bob];
      return scope.run(new Headers({ cookie }), async () => ({ who, res: await client.getSession({}) }));
    });
    for (const { who, res } of await Promise.all(calls)) {
      assert.equal(res.user?.subject, who);
    }
  });

  test("sessionEndOf reads the gateway's unauthenticated errors, binary and JSON", async () => {
    const transports: Record<string, Transport> = {
      "server transport": serverTransport(),
      "browser transport": createBrowserTransport({ baseUrl: gateway.publicUrl }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const err = await scope.run(new Headers(), () =>
        createClient(AccountService, transport).getDashboard({}).then(
          () => assert.fail(`${name}: anonymous GetDashboard succeeded`),
          (e: unknown) => e,
        ),
      );
      assert.deepEqual(sessionEndOf(err), { reason: SessionEndReason.NO_SESSION, loginUrl: `${gateway.publicUrl}/auth/login` }, name);
    }
  });

  test("sessionEndOf is undefined for every other error", async () => {
    const notFound = await createClient(ProductService, serverTransport())
      .getProduct({ productId: "p-9999" })
      .then(() => assert.fail("p-9999 found"), (e: unknown) => e);
    assert.ok(notFound instanceof ConnectError && notFound.code === Code.NotFound);
    assert.equal(sessionEndOf(notFound), undefined);
    assert.equal(sessionEndOf(new ConnectError("no detail", Code.Unauthenticated)), undefined);
    // What Next.js's redirect() throws: an Error with a digest.
    assert.equal(sessionEndOf(Object.assign(new Error("NEXT_REDIRECT"), { digest: "NEXT_REDIRECT;replace;/x;307;" })), undefined);
    assert.equal(sessionEndOf(new Error("boom")), undefined);
    assert.equal(sessionEndOf("unauthenticated"), undefined);
    assert.equal(sessionEndOf(undefined), undefined);
  });

  test("the login link of a session end brings the user back to the page", async () => {
    const err = await createClient(AccountService, serverTransport())
      .listOrders({})
      .then(() => assert.fail("anonymous ListOrders succeeded"), (e: unknown) => e);
    const end = sessionEndOf(err);
    assert.ok(end, `not a session end: ${String(err)}`);
    const page = "/orders?page=2&sort=new";
    const { cookie, landing } = await signIn(gateway, "alice", loginHref(end.loginUrl, page));
    assert.equal(landing, gateway.publicUrl + page);
    const user = await scope.run(new Headers({ cookie }), () => fetchSession(serverTransport()));
    assert.equal(user?.subject, "alice");
  });

  test("a login link built from an attacker's return_to lands on the home page", async () => {
    const { landing } = await signIn(gateway, "bob", loginHref("/auth/login", "//evil.example/steal"));
    assert.equal(landing, gateway.publicUrl + "/");
  });
});

describe("loginHref", () => {
  const cases: [returnTo: string, want: string][] = [
    ["/orders?page=2", "/auth/login?return_to=%2Forders%3Fpage%3D2"],
    ["/", "/auth/login?return_to=%2F"],
    ["/orders/7#items", "/auth/login?return_to=%2Forders%2F7%23items"],
    ["/a b/ü", "/auth/login?return_to=%2Fa%20b%2F%C3%BC"],
    // Encoded slashes stay a path on this site: browsers do not decode them.
    ["/%2F%2Fevil.com", "/auth/login?return_to=%2F%252F%252Fevil.com"],
    ["/%5Cevil.com", "/auth/login?return_to=%2F%255Cevil.com"],
    // Everything below leaves the site or is no path: "/" instead.
    ["//evil.com", "/auth/login?return_to=%2F"],
    ["//evil.com/orders", "/auth/login?return_to=%2F"],
    ["/\\evil.com", "/auth/login?return_to=%2F"],
    ["\\\\evil.com", "/auth/login?return_to=%2F"],
    ["\\/evil.com", "/auth/login?return_to=%2F"],
    ["/\t/evil.com", "/auth/login?return_to=%2F"],
    ["/\n/evil.com", "/auth/login?return_to=%2F"],
    ["/\r\n/evil.com", "/auth/login?return_to=%2F"],
    [" //evil.com", "/auth/login?return_to=%2F"],
    ["https://evil.com", "/auth/login?return_to=%2F"],
    ["https:/evil.com", "/auth/login?return_to=%2F"],
    ["HTTP://evil.com/", "/auth/login?return_to=%2F"],
    ["javascript:alert(1)", "/auth/login?return_to=%2F"],
    ["JavaScript:alert(1)//", "/auth/login?return_to=%2F"],
    ["data:text/html,<script>alert(1)</script>", "/auth/login?return_to=%2F"],
    ["%2F%2Fevil.com", "/auth/login?return_to=%2F"],
    ["%2f%5cevil.com", "/auth/login?return_to=%2F"],
    ["evil.com", "/auth/login?return_to=%2F"],
    ["orders", "/auth/login?return_to=%2F"],
    ["", "/auth/login?return_to=%2F"],
  ];
  for (const [returnTo, want] of cases) {
    test(`return_to ${JSON.stringify(returnTo)}`, () => {
      assert.equal(loginHref("/auth/login", returnTo), want);
    });
  }

  test("keeps the login URL's own query and fragment", () => {
    assert.equal(loginHref("/auth/login?prompt=login", "/x"), "/auth/login?prompt=login&return_to=%2Fx");
    assert.equal(loginHref("https://id.example/auth/login#top", "/x"), "https://id.example/auth/login?return_to=%2Fx#top");
  });
});
