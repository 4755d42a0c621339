// Where to send a user to sign in, and the page to come back to.

/**
 * Whether p is a path on this site that is safe as a redirect target: one
 * leading "/" (not "//" or "/\", which browsers read as another host), no
 * scheme, no control characters (browsers drop tabs and newlines, which
 * could turn "/\t/evil.com" into "//evil.com").
 */
export function isSameSitePath(p: string): boolean {
  if (!p.startsWith("/") || p.startsWith("//") || p.startsWith("/\\")) {
    return false;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) {
    return false;
  }
  // Belt and braces: resolved against an origin, it must stay there.
  const base = "http://same-site.invalid";
  try {
    return new URL(p, base).origin === base;
  } catch {
    return false;
  }
}

/**
 * The login URL (from a SessionError or GetSession, e.g. "/auth/login") with
 * `return_to` set to returnTo, the page to land on after signing in. A
 * returnTo that is not a same-site path becomes "/": never an open redirect.
 */
export function loginHref(loginUrl: string, returnTo: string): string {
  const target = isSameSitePath(returnTo) ? returnTo : "/";
  const hash = loginUrl.indexOf("#");
  const base = hash === -1 ? loginUrl : loginUrl.slice(0, hash);
  const fragment = hash === -1 ? "" : loginUrl.slice(hash);
  const sep = base.includes("?") ? (base.endsWith("?") || base.endsWith("&") ? "" : "&") : "?";
  return `${base}${sep}return_to=${encodeURIComponent(target)}${fragment}`;
}
