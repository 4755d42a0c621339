import { productClient } from "@/lib/clients";
import { money } from "@/lib/display";

// The catalog: anonymous visitors are welcome (ProductService is public).
export default async function Products({ searchParams }: { searchParams: Promise<{ page_token?: string }> }) {
  const { page_token: pageToken = "" } = await searchParams;
  const res = await productClient().listProducts({ pageSize: 8, pageToken });
  return (
    <>
      <h1>Products</h1>
      <table id="products">
        <tbody>
          {res.products.map((p) => (
            <tr key={p.productId} data-product-id={p.productId}>
              <td>{p.name}</td>
              <td>{p.category}</td>
              <td>{money(p.price)}</td>
              <td>
                {p.inStock ? (
                  <a className="order" href={`/orders/new?product=${encodeURIComponent(p.productId)}`}>
                    Order
                  </a>
                ) : (
                  <span className="muted">out of stock</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        {pageToken && <a href="/products">First page</a>}{" "}
        {res.nextPageToken && (
          <a id="next-page" href={`/products?page_token=${encodeURIComponent(res.nextPageToken)}`}>
            Next page
          </a>
        )}
      </p>
    </>
  );
}
