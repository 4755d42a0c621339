// Next.js 16's proxy (formerly middleware): in front of every request.
// - /auth/* and the RPC paths go to the gateway at CUSTODIAN_URL (read at run
//   time, so one build serves any gateway), keeping this app's origin as the
//   gateway's public URL: one origin, one SameSite=Strict cookie.
// - Visitors without a session cookie asking for a protected page go straight
//   to /auth/login?return_to=<the page>.
// - Every other request continues, with the page's path in x-custodian-path
//   for withLogin's return_to.
import { custodianProxy } from "@custodian-bff/nextjs/proxy";

export const proxy = custodianProxy({
  protectedPaths: ["/dashboard", "/orders", "/profile"],
});

export const config = {
  // Everything but Next's own static files.
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
