// Connect transports for the two places a Next.js app calls the gateway
// from: its server (server components, server actions, route handlers),
// which speaks for the browser, and the browser itself.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/** The part of a Headers object the server transport reads: `get`. */
export interface HeadersLike {
  get(name: string): string | null;
}

/**
 * The only request headers the server transport copies from the incoming
 * request: the session cookie travels in `cookie`, and the client address in
 * `x-forwarded-for` keeps the gateway's per-client rate limits per client
 * (the gateway trusts it only from addresses in its `trusted_proxies`).
 */
export const FORWARDED_HEADERS: readonly string[] = ["cookie", "x-forwarded-for"];

export interface ServerTransportOptions {
  /** The gateway, server to server, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** The incoming request's headers, read once per call (e.g. `headers` of next/headers). */
  requestHeaders: () => HeadersLike | Promise<HeadersLike>;
  /** The fetch to call; `cache: "no-store"` is added to every request. Default: globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /** Binary protobuf (default) or JSON. */
  useBinaryFormat?: boolean;
}

/**
 * A transport for calls made on the server on behalf of the browser whose
 * request is being handled. Each call carries that browser's cookie and
 * address and nothing else of its request, and is never cached: answers hold
 * one user's data.
 */
export function createServerTransport(opts: ServerTransportOptions): Transport {
  const forward: Interceptor = (next) => async (req) => {
    const incoming = await opts.requestHeaders();
    for (const name of FORWARDED_HEADERS) {
      const value = incoming.get(name);
      if (value !== null && value !== "") {
        req.header.set(name, value);
      }
    }
    return next(req);
  };
  const baseFetch = opts.fetch;
  return createConnectTransport({
    baseUrl: opts.baseUrl,
    useBinaryFormat: opts.useBinaryFormat ?? true,
    // Looked up at call time so that a fetch patched later (Next.js patches
    // the global one) is the one used.
    fetch: (input, init) => (baseFetch ?? globalThis.fetch)(input, { ...init, cache: "no-store" }),
    interceptors: [forward],
  });
}

export interface BrowserTransportOptions {
  /** The gateway's public origin; default: the page's own origin. */
  baseUrl?: string;
}

/**
 * A transport for client components: calls go to the page's own origin (the
 * gateway's public URL, or Next.js forwarding to it) with the session cookie
 * (`credentials: "same-origin"`), as JSON, with `X-CSRF: 1`.
 */
export function createBrowserTransport(opts: BrowserTransportOptions = {}): Transport {
  const csrf: Interceptor = (next) => (req) => {
    req.header.set("X-CSRF", "1");
    return next(req);
  };
  return createConnectTransport({
    // "/" when there is no window (a client component rendered on the
    // server): the transport can be created there, and calls resolve
    // against the page once they run in the browser.
    baseUrl: opts.baseUrl ?? (typeof window === "undefined" ? "/" : window.location.origin),
    useBinaryFormat: false,
    fetch: (input, init) => globalThis.fetch(input, { ...init, credentials: "same-origin" }),
    interceptors: [csrf],
  });
}
