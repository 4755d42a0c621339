import { withLogin } from "@custodian-bff/nextjs/server";
import { Section } from "@custodian-bff/acme/acme/storefront/v1/types_pb";
import { accountClient } from "@/lib/clients";
import { date, money, orderStatus, tier } from "@/lib/display";

// The dashboard needs a session. proxy.ts already sends visitors without a
// session cookie to login; withLogin does the same when the session ended
// since (expired, signed out elsewhere, refresh refused by the provider):
// the gateway answers `unauthenticated`, withLogin redirect()s to the login
// URL with return_to=/dashboard.
export default async function Dashboard() {
  const d = await withLogin(() => accountClient().getDashboard({ recentOrderCount: 5 }));
  return (
    <>
      <h1>Dashboard</h1>
      {d.missingSections.length > 0 && (
        <p className="muted">
          Some sections are unavailable right now: {d.missingSections.map((s) => Section[s]).join(", ")}.
        </p>
      )}
      {d.profile && (
        <section id="profile">
          <h2 id="display-name">{d.profile.displayName}</h2>
          <p id="email">{d.profile.email}</p>
        </section>
      )}
      {d.loyalty && (
        <p id="loyalty">
          {tier(d.loyalty.tier)} member, <span id="points">{d.loyalty.points.toString()}</span> points
        </p>
      )}
      <h2>Recent orders</h2>
      <ul id="recent-orders">
        {d.recentOrders.map((o) => (
          <li key={o.orderId} data-order-id={o.orderId}>
            <a href={`/orders/${encodeURIComponent(o.orderId)}`}>{o.orderId}</a> — {date(o.createTime)} —{" "}
            {orderStatus(o.status)} — {money(o.total)}
          </li>
        ))}
      </ul>
      <p>
        <a href="/orders">All orders</a> · <a href="/products">Order something</a>
      </p>
    </>
  );
}
