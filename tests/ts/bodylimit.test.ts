// An oversized request, sent by the generated TypeScript clients in every
// protocol, is refused as a mistake (invalid_argument, HTTP 413 on Connect)
// and sent once: never resource_exhausted or 429, which apps and libraries
// take for a rate limit and retry.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ProductService } from "@custodian-bff/acme/acme/storefront/v1/product_pb";
import { startGateway, type Gateway } from "./gateway.js";

// The storefront's ProductService reads at most 16 KiB per request.
const OVERSIZED = 64 << 10;

let gateway: Gateway;

before(async () => {
  gateway = await startGateway();
});

after(async () => {
  await gateway?.stop();
});

const transports: Record<string, (baseUrl: string, interceptors: Interceptor[]) => Transport> = {
  "connect json": (baseUrl, interceptors) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "connect binary over http/2": (baseUrl, interceptors) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
  "grpc-web": (baseUrl, interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  grpc: (baseUrl, interceptors) => createGrpcTransport({ baseUrl, interceptors }),
};

describe("an oversized request", () => {
  for (const [name, makeTransport] of Object.entries(transports)) {
    test(`over ${name} is invalid_argument, sent once`, async () => {
      let sent = 0;
      const count: Interceptor = (next) => (req) => {
        sent++;
        return next(req);
      };
      const client = createClient(ProductService, makeTransport(gateway.baseUrl, [count]));
      await assert.rejects(client.listProducts({ category: "k".repeat(OVERSIZED) }), (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.InvalidArgument);
        assert.equal(err.rawMessage, "request is too large");
        return true;
      });
      assert.equal(sent, 1);
    });
  }

  test("over Connect is answered 413 with a Connect error", async () => {
    const res = await fetch(`${gateway.baseUrl}/acme.storefront.v1.ProductService/ListProducts`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
      body: JSON.stringify({ category: "k".repeat(OVERSIZED) }),
    });
    assert.equal(res.status, 413);
    assert.equal(res.headers.get("retry-after"), null);
    assert.deepEqual(await res.json(), { code: "invalid_argument", message: "request is too large" });
  });
});
