// A browser app built by Vite on the packages as a team would use them:
// the schema packages and the core of @custodian-bff/nextjs (no Next.js).
import { createClient } from "@connectrpc/connect";
import { createBrowserTransport, loginHref, sessionEndOf } from "@custodian-bff/nextjs";
import { SessionService } from "@custodian-bff/api/custodian/v1/session_pb";
import { ProductService } from "@custodian-bff/acme/acme/storefront/v1/product_pb";
import { AccountService } from "@custodian-bff/acme/acme/storefront/v1/account_pb.js";

const transport = createBrowserTransport();
const sessions = createClient(SessionService, transport);
const products = createClient(ProductService, transport);
const account = createClient(AccountService, transport);

async function main(out: HTMLElement): Promise<void> {
  const session = await sessions.getSession({});
  const { products: list } = await products.listProducts({ pageSize: 5 });
  try {
    const dashboard = await account.getDashboard({});
    out.textContent = `${session.user?.name ?? "?"}: ${dashboard.recentOrders.length} orders, ${list.length} products`;
  } catch (err) {
    const end = sessionEndOf(err);
    if (!end) throw err;
    window.location.assign(loginHref(end.loginUrl, window.location.pathname + window.location.search));
  }
}

void main(document.getElementById("out")!);
