// The signed-in user, and the typed "session ended" error of the gateway.
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  SessionErrorSchema,
  SessionService,
  type SessionEndReason,
  type User,
} from "@custodian-bff/api/custodian/v1/session_pb";

/** Why a call needs a new sign-in, and where to send the user for it. */
export interface SessionEnd {
  reason: SessionEndReason;
  /** A path on the gateway's public URL, e.g. "/auth/login"; add return_to with loginHref. */
  loginUrl: string;
}

/**
 * The session end that err reports: set for the gateway's unauthenticated
 * errors (a ConnectError carrying a custodian.v1.SessionError detail),
 * undefined for anything else, so a caller can rethrow everything it does
 * not handle (Next.js redirect and notFound errors included).
 */
export function sessionEndOf(err: unknown): SessionEnd | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) {
    return undefined;
  }
  const [detail] = err.findDetails(SessionErrorSchema);
  if (!detail) {
    return undefined;
  }
  return { reason: detail.reason, loginUrl: detail.loginUrl };
}

/**
 * The signed-in user, or null for a caller without a live session (the
 * gateway answers those with signed_in=false; an unauthenticated error, as
 * older gateways sent, is also null). Every other error is thrown: a session
 * store that is down is not "signed out".
 */
export async function fetchSession(transport: Transport): Promise<User | null> {
  try {
    const res = await createClient(SessionService, transport).getSession({});
    return res.signedIn && res.user ? res.user : null;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
      return null;
    }
    throw err;
  }
}
