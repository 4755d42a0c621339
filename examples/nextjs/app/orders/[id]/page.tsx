import { notFound } from "next/navigation";
import { Code, ConnectError } from "@connectrpc/connect";
import { withLogin } from "@custodian-bff/nextjs/server";
import { accountClient } from "@/lib/clients";
import { date, money, orderStatus } from "@/lib/display";

export default async function OrderPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const res = await withLogin(async () => {
    try {
      return await accountClient().getOrder({ orderId: id });
    } catch (err) {
      // Someone else's order is as absent as one that never existed.
      if (err instanceof ConnectError && (err.code === Code.NotFound || err.code === Code.InvalidArgument)) {
        return undefined;
      }
      throw err;
    }
  });
  const order = res?.order;
  if (!order) notFound();
  return (
    <>
      <h1>
        Order <span id="order-id">{order.orderId}</span>
      </h1>
      <p>
        Placed {date(order.createTime)}, <span id="order-status">{orderStatus(order.status)}</span>, total{" "}
        <span id="order-total">{money(order.total)}</span>
      </p>
      <table id="order-lines">
        <tbody>
          {order.lines.map((l, i) => (
            <tr key={i} data-product-id={l.productId}>
              <td>{l.productName}</td>
              <td>× {l.quantity}</td>
              <td>{money(l.unitPrice)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        <a href="/orders">All orders</a>
      </p>
    </>
  );
}
