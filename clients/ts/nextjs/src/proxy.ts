// @custodian-bff/nextjs/proxy: the request gate for a Next.js app in front of
// a Custodian gateway (Next.js 16's proxy.ts). One origin: the gateway's
// paths are forwarded to it at run time, so one build serves any gateway.
import { NextResponse, type NextRequest } from "next/server";
import { loginHref } from "./login.js";
import { PATH_HEADER } from "./path-header.js";

/** A path prefix (matched at a "/" boundary: "/orders" matches "/orders/7", not "/ordersx") or a RegExp. */
export type PathPattern = string | RegExp;

export interface CustodianProxyOptions {
  /** The gateway, server to server; default: CUSTODIAN_URL, read per request. */
  gatewayUrl?: string;
  /** Pages that need a session: visitors without the session cookie go to the login first. */
  protectedPaths: PathPattern[];
  /** The gateway's session cookie; default "__Host-custodian". */
  cookieName?: string;
  /**
   * Protobuf packages whose RPC paths ("/<package>.<Service>/<Method>") go to
   * the gateway; default ["custodian.v1", "acme.storefront.v1"] (Custodian's
   * own API and the demo store's): list your own.
   */
  services?: string[];
  /** More paths for the gateway, besides /auth/ and the services' RPCs. */
  forwardPaths?: PathPattern[];
  /** Where to sign in, on this origin; default "/auth/login". */
  loginUrl?: string;
}

function matches(pathname: string, pattern: PathPattern): boolean {
  if (typeof pattern !== "string") {
    return pattern.test(pathname);
  }
  const prefix = pattern.endsWith("/") ? pattern : pattern + "/";
  return pathname === pattern || pathname.startsWith(prefix);
}

/**
 * Returns the proxy function: gateway paths are rewritten to the gateway;
 * a protected page without the session cookie is redirected (303) to the
 * login with return_to; every other request continues with the
 * x-custodian-path request header (replacing any a client sent) for
 * currentPath(). Only the cookie's presence is checked here: an ended
 * session is found by the gateway, and withLogin turns it into a redirect.
 */
export function custodianProxy(opts: CustodianProxyOptions): (request: NextRequest) => NextResponse {
  const cookieName = opts.cookieName ?? "__Host-custodian";
  const rpcPrefixes = (opts.services ?? ["custodian.v1", "acme.storefront.v1"]).map((pkg) => `/${pkg}.`);
  const forwardPaths: PathPattern[] = ["/auth", ...(opts.forwardPaths ?? [])];
  const loginUrl = opts.loginUrl ?? "/auth/login";

  return (request) => {
    const { pathname, search } = request.nextUrl;
    const path = pathname + search;
    if (rpcPrefixes.some((p) => pathname.startsWith(p)) || forwardPaths.some((p) => matches(pathname, p))) {
      const gatewayUrl = opts.gatewayUrl ?? process.env.CUSTODIAN_URL;
      if (!gatewayUrl) {
        throw new Error("@custodian-bff/nextjs/proxy: set CUSTODIAN_URL to the gateway's URL, or pass gatewayUrl");
      }
      return NextResponse.rewrite(new URL(path, gatewayUrl));
    }
    if (opts.protectedPaths.some((p) => matches(pathname, p)) && !request.cookies.has(cookieName)) {
      return NextResponse.redirect(new URL(loginHref(loginUrl, path), request.url), 303);
    }
    const headers = new Headers(request.headers);
    headers.set(PATH_HEADER, path);
    return NextResponse.next({ request: { headers } });
  };
}
