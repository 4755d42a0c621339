// @custodian-bff/nextjs/server's withLogin with Next.js's real redirect()
// and notFound() (next/navigation, loaded in plain Node): a session end
// becomes a redirect to the login with return_to; everything else, Next's
// own control-flow errors included, goes through untouched. (What needs a
// request scope, headers() for serverTransport, getSession and currentPath,
// is covered by the example's end-to-end tests in Chromium.)
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";
import { Code, ConnectError } from "@connectrpc/connect";
import { SessionEndReason, SessionErrorSchema } from "@custodian-bff/api/custodian/v1/session_pb";

register("./next-resolve.js", import.meta.url);
const { serverTransport, withLogin } = await import("@custodian-bff/nextjs/server");
const { notFound, redirect } = await import("next/navigation.js");

// sessionEnded is the gateway's error for a call whose session ended.
function sessionEnded(loginUrl = "/auth/login"): ConnectError {
  return new ConnectError("session ended", Code.Unauthenticated, undefined, [
    { desc: SessionErrorSchema, value: { reason: SessionEndReason.REFRESH_FAILED, loginUrl } },
  ]);
}

// redirectTarget returns the URL of a Next.js redirect error (its digest is
// "NEXT_REDIRECT;<type>;<url>;<status>;"), failing for any other error.
function redirectTarget(err: unknown): string {
  const digest = (err as { digest?: unknown }).digest;
  assert.equal(typeof digest, "string", `not a Next.js redirect: ${String(err)}`);
  const parts = (digest as string).split(";");
  assert.equal(parts[0], "NEXT_REDIRECT", `not a Next.js redirect: ${String(digest)}`);
  return parts.slice(2, -2).join(";");
}

async function thrownBy(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail("did not throw"),
    (err: unknown) => err,
  );
}

describe("withLogin", () => {
  test("returns what fn returns", async () => {
    assert.equal(await withLogin(async () => 42, { returnTo: "/x" }), 42);
  });

  test("redirects a session end to the login with return_to", async () => {
    const err = await thrownBy(withLogin(() => Promise.reject(sessionEnded()), { returnTo: "/orders?page=2" }));
    assert.equal(redirectTarget(err), "/auth/login?return_to=%2Forders%3Fpage%3D2");
  });

  test("keeps the login URL's origin and query", async () => {
    const err = await thrownBy(
      withLogin(() => Promise.reject(sessionEnded("http://localhost:8080/auth/login")), { returnTo: "/dashboard" }),
    );
    assert.equal(redirectTarget(err), "http://localhost:8080/auth/login?return_to=%2Fdashboard");
  });

  test("never redirects back off the site", async () => {
    for (const returnTo of ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"]) {
      const err = await thrownBy(withLogin(() => Promise.reject(sessionEnded()), { returnTo }));
      assert.equal(redirectTarget(err), "/auth/login?return_to=%2F", returnTo);
    }
  });

  test("lets Next.js's redirect and notFound through untouched", async () => {
    let thrown: unknown;
    const viaRedirect = await thrownBy(
      withLogin(async () => {
        try {
          redirect("/elsewhere");
        } catch (e) {
          thrown = e;
          throw e;
        }
      }, { returnTo: "/x" }),
    );
    assert.equal(viaRedirect, thrown);
    assert.equal(redirectTarget(viaRedirect), "/elsewhere");

    const viaNotFound = await thrownBy(
      withLogin(async () => {
        try {
          notFound();
        } catch (e) {
          thrown = e;
          throw e;
        }
      }, { returnTo: "/x" }),
    );
    assert.equal(viaNotFound, thrown);
  });

  test("rethrows every other error as it is", async () => {
    const others = [
      new ConnectError("no such order", Code.NotFound),
      new ConnectError("store down", Code.Unavailable),
      new ConnectError("unauthenticated without a SessionError", Code.Unauthenticated),
      new Error("boom"),
    ];
    for (const e of others) {
      assert.equal(await thrownBy(withLogin(() => Promise.reject(e), { returnTo: "/x" })), e);
    }
  });
});

describe("serverTransport", () => {
  test("names CUSTODIAN_URL when it has no gateway URL", () => {
    const saved = process.env.CUSTODIAN_URL;
    delete process.env.CUSTODIAN_URL;
    try {
      assert.throws(() => serverTransport(), /CUSTODIAN_URL/);
      assert.ok(serverTransport({ baseUrl: "http://127.0.0.1:9" }));
    } finally {
      if (saved !== undefined) process.env.CUSTODIAN_URL = saved;
    }
  });
});
