// @custodian-bff/nextjs: calling a Custodian gateway from Next.js. This entry
// imports nothing of Next.js and works in any runtime (Node, browsers, Vite
// apps); ./server and ./proxy hold what needs Next.js.
export {
  createBrowserTransport,
  createServerTransport,
  type BrowserTransportOptions,
  type HeadersLike,
  type ServerTransportOptions,
} from "./transport.js";
export { fetchSession, sessionEndOf, type SessionEnd } from "./session.js";
export { loginHref } from "./login.js";
