/**
 * The request header in which the proxy helper tells server components the
 * path and query of the page being rendered (Next.js gives them no URL).
 */
export const PATH_HEADER = "x-custodian-path";
