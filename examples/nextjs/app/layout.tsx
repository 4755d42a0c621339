import type { Metadata } from "next";
import type { ReactNode } from "react";
import { currentPath } from "@custodian-bff/nextjs/server";
import { loginHref } from "@custodian-bff/nextjs";
import { sessionClient } from "@/lib/clients";

export const metadata: Metadata = {
  title: "Acme store on Custodian",
};

// Every page shows one user's data: render each request afresh, never from a
// cache shared between users.
export const dynamic = "force-dynamic";

const css = `
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #222; }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #f3f1ec; border-bottom: 1px solid #ddd; }
header nav { display: flex; gap: .8rem; flex: 1; }
main { padding: 1rem; max-width: 60rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .6rem; border-bottom: 1px solid #eee; text-align: left; }
.muted { color: #777; }
`;

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <head>
        <style>{css}</style>
      </head>
      <body>
        <header>
          <nav>
            <a href="/">Acme</a>
            <a href="/products">Products</a>
            <a href="/dashboard">Dashboard</a>
            <a href="/orders">Orders</a>
            <a href="/profile">Profile</a>
          </nav>
          <SessionBar />
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}

// SessionBar names the signed-in user and offers sign-out, or sign-in back to
// this page. GetSession answers signed-out visitors with signedIn=false.
async function SessionBar() {
  let res;
  try {
    res = await sessionClient().getSession({});
  } catch {
    return <span id="session" className="muted">Session unavailable</span>;
  }
  if (!res.signedIn || !res.user) {
    const href = loginHref(res.loginUrl || "/auth/login", await currentPath());
    return (
      <span id="session">
        <a id="sign-in" href={href}>Sign in</a>
      </span>
    );
  }
  return (
    <span id="session">
      Signed in as <b id="session-user">{res.user.name}</b>{" "}
      {/* A plain link: the gateway ends the session, clears its cookie and
          sends the browser through the provider's logout back to "/". */}
      <a id="sign-out" href={res.logoutUrl}>Sign out</a>
    </span>
  );
}
