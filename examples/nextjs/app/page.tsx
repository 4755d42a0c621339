import { getSession, currentPath } from "@custodian-bff/nextjs/server";
import { loginHref } from "@custodian-bff/nextjs";
import { productClient } from "@/lib/clients";
import { money } from "@/lib/display";

// Home: anyone may visit. getSession() returns the user or null and never
// throws for a signed-out visitor.
export default async function Home() {
  const [user, products] = await Promise.all([
    getSession(),
    productClient().listProducts({ pageSize: 4 }),
  ]);
  return (
    <>
      <h1>Acme store</h1>
      {user ? (
        <p id="who">
          Welcome back, <span id="user-name">{user.name}</span> (<span id="user-email">{user.email}</span>).{" "}
          <a href="/dashboard">Your dashboard</a>
        </p>
      ) : (
        <p id="who">
          Not signed in. <a id="home-sign-in" href={loginHref("/auth/login", await currentPath())}>Sign in</a> to see
          your orders.
        </p>
      )}
      <h2>New in the store</h2>
      <ul id="products">
        {products.products.map((p) => (
          <li key={p.productId}>
            {p.name} — {money(p.price)}
          </li>
        ))}
      </ul>
      <p>
        <a href="/products">All products</a>
      </p>
    </>
  );
}
