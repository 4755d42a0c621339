// @custodian-bff/nextjs/server: for server components, server actions and
// route handlers. Reads the incoming request with next/headers; never sets a
// cookie (server components cannot), so an ended session becomes a redirect.
import "server-only";
import type { Transport } from "@connectrpc/connect";
import type { User } from "@custodian-bff/api/custodian/v1/session_pb";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { isSameSitePath, loginHref } from "./login.js";
import { PATH_HEADER } from "./path-header.js";
import { fetchSession, sessionEndOf } from "./session.js";
import { createServerTransport } from "./transport.js";

export interface ServerTransportConfig {
  /** The gateway, server to server; default: the CUSTODIAN_URL environment variable, read at run time. */
  baseUrl?: string;
}

/**
 * A transport to the gateway that forwards the current request's cookie and
 * X-Forwarded-For, with `no-store` fetches.
 */
export function serverTransport(opts: ServerTransportConfig = {}): Transport {
  const baseUrl = opts.baseUrl ?? process.env.CUSTODIAN_URL;
  if (!baseUrl) {
    throw new Error("@custodian-bff/nextjs: set CUSTODIAN_URL to the gateway's URL, or pass baseUrl");
  }
  return createServerTransport({ baseUrl, requestHeaders: () => headers() });
}

/** The signed-in user or null; never throws for signed-out users. */
export async function getSession(): Promise<User | null> {
  return fetchSession(serverTransport());
}

/**
 * The path and query of the page being rendered, as the proxy helper
 * recorded it in the request; "/" without one.
 */
export async function currentPath(): Promise<string> {
  const path = (await headers()).get(PATH_HEADER);
  return path !== null && isSameSitePath(path) ? path : "/";
}

export interface WithLoginOptions {
  /** The page to come back to after signing in; default: currentPath(). */
  returnTo?: string;
}

/**
 * Runs fn; when the gateway says the session ended (unauthenticated with a
 * SessionError), redirects to its login URL with return_to. Every other
 * error, Next.js's own redirect and notFound included, is rethrown as is.
 */
export async function withLogin<T>(fn: () => Promise<T>, opts: WithLoginOptions = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const end = sessionEndOf(err);
    if (!end) {
      throw err;
    }
    redirect(loginHref(end.loginUrl, opts.returnTo ?? (await currentPath())));
  }
}
