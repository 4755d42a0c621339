import { withLogin } from "@custodian-bff/nextjs/server";
import { accountClient } from "@/lib/clients";
import { date, money, orderStatus } from "@/lib/display";

const PAGE_SIZE = 5;

// Orders, a page at a time: the page token rides in the query, so every page
// has its own URL, and after a login the user lands on the same page.
export default async function Orders({ searchParams }: { searchParams: Promise<{ page_token?: string }> }) {
  const { page_token: pageToken = "" } = await searchParams;
  const res = await withLogin(() => accountClient().listOrders({ pageSize: PAGE_SIZE, pageToken }));
  return (
    <>
      <h1>Your orders</h1>
      <table id="orders">
        <tbody>
          {res.orders.map((o) => (
            <tr key={o.orderId} data-order-id={o.orderId}>
              <td>
                <a href={`/orders/${encodeURIComponent(o.orderId)}`}>{o.orderId}</a>
              </td>
              <td>{date(o.createTime)}</td>
              <td>{orderStatus(o.status)}</td>
              <td>{money(o.total)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {res.orders.length === 0 && <p>No orders yet.</p>}
      <p>
        {pageToken && <a href="/orders">First page</a>}{" "}
        {res.nextPageToken && (
          <a id="next-page" href={`/orders?page_token=${encodeURIComponent(res.nextPageToken)}`}>
            Next page
          </a>
        )}
      </p>
    </>
  );
}
