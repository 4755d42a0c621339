// Signs a user in to a demo gateway without a browser: the login pages,
// the demo identity provider's form and the callback, with a cookie jar of
// its own, as internal/gatewaytest's Browser does in Go.
import type { Gateway } from "./gateway.js";

export const SESSION_COOKIE = "__Host-custodian";

// A tiny cookie jar: name=value per origin, no attributes (the tests talk
// to two origins over plain http: the gateway's public URL and the
// provider at the listen address).
class Jar {
  private readonly byOrigin = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const origin = new URL(url).origin;
    const cookies = this.byOrigin.get(origin) ?? new Map<string, string>();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === "") cookies.delete(name);
      else cookies.set(name, value);
    }
    this.byOrigin.set(origin, cookies);
  }

  header(url: string): string {
    const cookies = this.byOrigin.get(new URL(url).origin) ?? new Map<string, string>();
    return [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  get(url: string, name: string): string | undefined {
    return this.byOrigin.get(new URL(url).origin)?.get(name);
  }
}

export interface SignedIn {
  // The Cookie header a browser would send the gateway now: the session.
  cookie: string;
  // Where the gateway's continue page sends the browser after the callback
  // (the return_to of the login), as an absolute URL.
  landing: string;
}

// signIn goes through login at loginPath (relative to the public URL, e.g.
// "/auth/login?return_to=%2Forders") as user with the demo password.
export async function signIn(gateway: Gateway, user: string, loginPath = "/auth/login"): Promise<SignedIn> {
  const jar = new Jar();
  const send = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set("cookie", cookie);
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    jar.store(url, res);
    return res;
  };
  const location = (url: string, res: Response): string => {
    const to = res.headers.get("location");
    if (res.status < 300 || res.status > 399 || !to) {
      throw new Error(`${url}: status ${res.status}, want a redirect`);
    }
    return new URL(to, url).toString();
  };

  // The login page sends the browser to the provider (via the public URL
  // first when another host was asked for).
  let url = new URL(loginPath, gateway.publicUrl + "/").toString();
  let res = await send(url);
  while (res.status >= 300 && res.status <= 399 && new URL(location(url, res)).pathname === "/auth/login") {
    url = location(url, res);
    res = await send(url);
  }
  const authUrl = location(url, res);
  const form = await send(authUrl);
  if (form.status !== 200) throw new Error(`provider form: status ${form.status}`);
  await form.text();
  const posted = await send(authUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username: user, password: "demo", login: "1" }).toString(),
  });
  const callbackUrl = location(authUrl, posted);
  const callback = await send(callbackUrl);
  const page = await callback.text();
  if (callback.status !== 200) throw new Error(`callback: status ${callback.status}: ${page.slice(0, 300)}`);
  const session = jar.get(gateway.publicUrl, SESSION_COOKIE);
  if (!session) throw new Error("no session cookie after the callback");
  const refresh = /<meta http-equiv="refresh" content="0;url=([^"]*)">/.exec(page);
  if (!refresh) throw new Error(`callback page without a continue link: ${page.slice(0, 300)}`);
  const landing = new URL(unescapeHtml(refresh[1]), gateway.publicUrl).toString();
  return { cookie: `${SESSION_COOKIE}=${session}`, landing };
}

// unescapeHtml undoes html/template's escaping of an attribute value.
function unescapeHtml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|quot|lt|gt|apos);/gi, (_, e: string) => {
    const named: Record<string, string> = { amp: "&", quot: '"', lt: "<", gt: ">", apos: "'" };
    if (e[0] !== "#") return named[e.toLowerCase()];
    return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}
