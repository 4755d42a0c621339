import { randomUUID } from "node:crypto";
import { notFound } from "next/navigation";
import { Code, ConnectError } from "@connectrpc/connect";
import { withLogin } from "@custodian-bff/nextjs/server";
import { productClient } from "@/lib/clients";
import { money } from "@/lib/display";
import { placeOrder } from "../actions";

// The order form. It works without JavaScript too: the Server Action is a
// plain form POST to this page.
export default async function NewOrder({
  searchParams,
}: {
  searchParams: Promise<{ product?: string; error?: string }>;
}) {
  const { product: productId = "", error } = await searchParams;
  const res = await withLogin(async () => {
    try {
      return await productClient().getProduct({ productId });
    } catch (err) {
      if (err instanceof ConnectError && (err.code === Code.NotFound || err.code === Code.InvalidArgument)) {
        return undefined;
      }
      throw err;
    }
  });
  const product = res?.product;
  if (!product) notFound();
  return (
    <>
      <h1>Order {product.name}</h1>
      <p>{product.description}</p>
      <p>{money(product.price)} each</p>
      {error && (
        <p id="order-error" role="alert">
          {error}
        </p>
      )}
      <form id="place-order" action={placeOrder}>
        <input type="hidden" name="productId" value={product.productId} />
        <input type="hidden" name="idempotencyKey" value={randomUUID()} />
        <label>
          Quantity{" "}
          <select name="quantity" defaultValue="1">
            {[1, 2, 3, 4, 5].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>{" "}
        <button type="submit" id="place-order-submit">
          Place order
        </button>
      </form>
    </>
  );
}
