// How the example shows the Acme store's values.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  LoyaltyTier,
  OrderStatus,
  type Money,
} from "@custodian-bff/acme/acme/storefront/v1/types_pb";

export function money(m: Money | undefined): string {
  if (!m) return "–";
  return new Intl.NumberFormat("en-GB", { style: "currency", currency: m.currencyCode || "EUR" }).format(
    Number(m.amountMinor) / 100,
  );
}

export function date(t: Timestamp | undefined): string {
  if (!t) return "–";
  return timestampDate(t).toISOString().slice(0, 10);
}

export function orderStatus(s: OrderStatus): string {
  switch (s) {
    case OrderStatus.PLACED:
      return "placed";
    case OrderStatus.SHIPPED:
      return "shipped";
    case OrderStatus.DELIVERED:
      return "delivered";
    case OrderStatus.CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

export function tier(t: LoyaltyTier): string {
  switch (t) {
    case LoyaltyTier.BRONZE:
      return "Bronze";
    case LoyaltyTier.SILVER:
      return "Silver";
    case LoyaltyTier.GOLD:
      return "Gold";
    default:
      return "–";
  }
}
