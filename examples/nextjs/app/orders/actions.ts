"use server";

import { redirect } from "next/navigation";
import { Code, ConnectError } from "@connectrpc/connect";
import { withLogin } from "@custodian-bff/nextjs/server";
import { accountClient } from "@/lib/clients";

// placeOrder is the Server Action of the order form (app/orders/new). Next.js
// only runs it for a POST whose Origin is this app's host; the gateway checks
// the session again (the cookie is forwarded, and withLogin sends an ended
// session to login). The idempotency key comes from the form, so submitting
// the same form twice places one order.
export async function placeOrder(form: FormData): Promise<void> {
  const productId = String(form.get("productId") ?? "");
  const quantity = Number(form.get("quantity") ?? "1");
  const idempotencyKey = String(form.get("idempotencyKey") ?? "");
  const back = `/orders/new?product=${encodeURIComponent(productId)}`;
  const res = await withLogin(
    async () => {
      try {
        return await accountClient().placeOrder({ idempotencyKey, lines: [{ productId, quantity }] });
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.InvalidArgument) return err.rawMessage;
        throw err;
      }
    },
    { returnTo: back },
  );
  if (typeof res === "string") {
    redirect(`${back}&error=${encodeURIComponent(res)}`);
  }
  const id = res.order?.orderId;
  if (!id) throw new Error("PlaceOrder answered without an order");
  redirect(`/orders/${encodeURIComponent(id)}`);
}
