// A module resolve hook for tests that load @custodian-bff/nextjs/server and
// /proxy in plain Node, doing the two things Next.js's bundler does for
// them. The package imports "next/server" (and next/headers,
// next/navigation) as every Next.js app does, but the next package has no
// "exports" map, so Node's ES module resolver needs "next/server.js". And
// "server-only" resolves to an empty module under the "react-server"
// condition that Next.js sets for server code (elsewhere it throws, which is
// its purpose). Tests only: in an app, Next.js itself loads these entries.
import type { ResolveHook } from "node:module";

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  if (specifier === "server-only") {
    return nextResolve(specifier, { ...context, conditions: [...context.conditions, "react-server"] });
  }
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (/^next\/[a-z-]+$/.test(specifier) && (err as { code?: string }).code === "ERR_MODULE_NOT_FOUND") {
      return nextResolve(`${specifier}.js`, context);
    }
    throw err;
  }
};
