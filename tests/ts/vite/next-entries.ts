// Type-checked only (not bundled by Vite): the Next.js entries of
// @custodian-bff/nextjs resolve, with their next/* imports, under
// moduleResolution "bundler", the setting of Next.js apps.
import type { Transport } from "@connectrpc/connect";
import type { User } from "@custodian-bff/api/custodian/v1/session_pb.js";
import { currentPath, getSession, serverTransport, withLogin } from "@custodian-bff/nextjs/server";
import { custodianProxy } from "@custodian-bff/nextjs/proxy";
import type { NextRequest, NextResponse } from "next/server";

export const transport: Transport = serverTransport({ baseUrl: "http://127.0.0.1:8080" });
export const user: Promise<User | null> = getSession();
export const path: Promise<string> = currentPath();
export const page: Promise<number> = withLogin(async () => 1, { returnTo: "/orders" });
export const proxy: (req: NextRequest) => NextResponse = custodianProxy({ protectedPaths: ["/orders", /^\/me/] });

// The next/* types behind the entries resolved: not silently `any`.
type IsAny<T> = 0 extends 1 & T ? true : false;
export const requestResolved: IsAny<Parameters<typeof proxy>[0]> = false;
export const responseResolved: IsAny<ReturnType<typeof proxy>> = false;
export const proxyParamIsNextRequest: Parameters<ReturnType<typeof custodianProxy>>[0] extends NextRequest ? true : false = true;
