// Calls a running demo gateway through the generated TypeScript clients over
// Connect and gRPC, proving the generated code compiles and works.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ProductService } from "@custodian-bff/acme/acme/storefront/v1/product_pb";
import { AccountService } from "@custodian-bff/acme/acme/storefront/v1/account_pb";
import { SessionService, SessionErrorSchema, SessionEndReason } from "@custodian-bff/api/custodian/v1/session_pb";
import { BadRequestSchema } from "@custodian-bff/api/custodian/v1/errors_pb.js";
import { startGateway, type Gateway } from "./gateway.js";

let gateway: Gateway;

before(async () => {
  gateway = await startGateway();
});

after(async () => {
  await gateway?.stop();
});

const transports: Record<string, (baseUrl: string) => Transport> = {
  "connect json": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "connect binary over http/2": (baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  grpc: (baseUrl) => createGrpcTransport({ baseUrl }),
};

for (const [name, makeTransport] of Object.entries(transports)) {
  describe(`ProductService over ${name}`, () => {
    test("lists every product exactly once across pages", async () => {
      const client = createClient(ProductService, makeTransport(gateway.baseUrl));
      const seen = new Set<string>();
      let pageToken = "";
      let pages = 0;
      do {
        const res = await client.listProducts({ pageSize: 7, pageToken });
        assert.ok(res.products.length <= 7, "page larger than asked for");
        for (const p of res.products) {
          assert.ok(!seen.has(p.productId), `product ${p.productId} listed twice`);
          seen.add(p.productId);
          assert.ok(p.name.length > 0, "product without a name");
          assert.equal(p.price?.currencyCode, "EUR");
          assert.match(p.imageUrl, /^https:\/\//);
        }
        pageToken = res.nextPageToken;
        pages++;
      } while (pageToken !== "" && pages < 50);
      assert.ok(pages > 1, "expected more than one page");
      assert.ok(seen.size > 7, `only ${seen.size} products`);
    });

    test("gets one product, and not_found for an unknown one", async () => {
      const client = createClient(ProductService, makeTransport(gateway.baseUrl));
      const { products } = await client.listProducts({ pageSize: 1 });
      const res = await client.getProduct({ productId: products[0].productId });
      assert.equal(res.product?.productId, products[0].productId);
      await assert.rejects(client.getProduct({ productId: "p-9999" }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.NotFound);
        return true;
      });
    });

    test("refuses a page size out of range with field details", async () => {
      const client = createClient(ProductService, makeTransport(gateway.baseUrl));
      await assert.rejects(client.listProducts({ pageSize: 1000 }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.InvalidArgument);
        const [detail] = err.findDetails(BadRequestSchema);
        assert.equal(detail?.fieldViolations[0]?.field, "page_size");
        return true;
      });
    });

    test("GetSession answers an anonymous caller signed out, with a login URL", async () => {
      const client = createClient(SessionService, makeTransport(gateway.baseUrl));
      const res = await client.getSession({});
      assert.equal(res.signedIn, false);
      assert.equal(res.user, undefined);
      assert.equal(res.endReason, SessionEndReason.NO_SESSION);
      assert.equal(res.loginUrl, `${gateway.publicUrl}/auth/login`);
    });

    test("an account method tells an anonymous caller to sign in", async () => {
      const client = createClient(AccountService, makeTransport(gateway.baseUrl));
      await assert.rejects(client.getDashboard({}), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unauthenticated);
        const [detail] = err.findDetails(SessionErrorSchema);
        assert.equal(detail?.reason, SessionEndReason.NO_SESSION);
        assert.equal(detail?.loginUrl, `${gateway.publicUrl}/auth/login`);
        return true;
      });
    });
  });
}

test("no backend-internal field reaches the browser", async () => {
  const res = await fetch(`${gateway.baseUrl}/acme.storefront.v1.ProductService/ListProducts`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
    body: JSON.stringify({ pageSize: 100 }),
  });
  assert.equal(res.status, 200);
  const body = await res.text();
  for (const marker of ["costPrice", "supplier", "storageHost", "staffNotes", "margin", "shardHost", "acme.internal"]) {
    assert.ok(!body.includes(marker), `response contains ${marker}`);
  }
});
