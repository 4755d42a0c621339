import type { NextConfig } from "next";

// The gateway's address (CUSTODIAN_URL) is read at run time by proxy.ts and by
// the server transport, so one `next build` serves any gateway. Nothing here
// depends on it.
const nextConfig: NextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  typescript: {
    // scripts/nextjs.sh type-checks once, in the Turbopack build, and sets
    // this for its second, webpack-only compile check of the same sources.
    ignoreBuildErrors: process.env.NEXTJS_EXAMPLE_SKIP_TYPECHECK === "1",
  },
};

export default nextConfig;
