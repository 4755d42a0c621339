// Clients of the gateway for server components and server actions. Each call
// goes to the gateway at CUSTODIAN_URL with the browser's cookie and address
// (serverTransport copies just those two headers), never cached.
import "server-only";
import { createClient } from "@connectrpc/connect";
import { serverTransport } from "@custodian-bff/nextjs/server";
import { SessionService } from "@custodian-bff/api/custodian/v1/session_pb";
import { AccountService } from "@custodian-bff/acme/acme/storefront/v1/account_pb";
import { ProductService } from "@custodian-bff/acme/acme/storefront/v1/product_pb";

export function sessionClient() {
  return createClient(SessionService, serverTransport());
}

export function accountClient() {
  return createClient(AccountService, serverTransport());
}

export function productClient() {
  return createClient(ProductService, serverTransport());
}
