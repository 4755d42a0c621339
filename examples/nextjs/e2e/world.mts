// Starts the processes of the end-to-end tests and stops them again:
//
//   custodian-demo   the demo identity provider and the Acme backends, with
//                    access tokens of a few seconds; writes the gateway's
//                    configuration for the public URL http://localhost:P
//   custodian        the gateway, on an ephemeral loopback port, trusting the
//                    Next.js server (127.0.0.1) as its proxy
//   next start       the example on port P; the browser's origin, and the
//                    gateway's public URL (Next forwards /auth/* and the RPC
//                    paths to the gateway)
//
// Each child runs in a process group of its own and is killed with it, also
// when a test fails.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

// The bound for one process to start.
const START_TIMEOUT = 60_000;

export interface World {
  // The browser's origin, e.g. http://localhost:41234 (the Next.js app).
  appUrl: string;
  // Where the gateway listens, e.g. http://127.0.0.1:41235.
  gatewayUrl: string;
  // The demo world's controls, e.g. http://127.0.0.1:41236/demo/admin/.
  adminUrl: string;
  // The demo identity provider's origin (another site than appUrl).
  idpOrigin: string;
  // The processes' output so far, for a failed test's diagnosis.
  logs(): string;
  stop(): Promise<void>;
}

export interface WorldOptions {
  custodianBin: string;
  custodianDemoBin: string;
  // The example's directory, with a finished `next build` in .next.
  appDir: string;
  // The Next.js CLI (node_modules/next/dist/bin/next).
  nextBin: string;
  accessTokenLifetime: string;
}

// The process groups still running. If this process ends without the
// after hooks (an uncaught error, SIGINT or SIGTERM from the test runner),
// they are killed on the way out.
const running = new Set<number>();
function killRunning(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
}
process.once("exit", killRunning);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killRunning();
    process.exit(130);
  });
}

// A child process whose output lines are kept and can be waited on.
class Child {
  readonly lines: string[] = [];
  private readonly waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private readonly exited: Promise<void>;
  private exitCode: number | null = null;
  private readonly proc: ChildProcess;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {
    this.proc = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so that stop() reaches its children too
    });
    if (this.proc.pid !== undefined) running.add(this.proc.pid);
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code, signal) => {
        if (this.proc.pid !== undefined) running.delete(this.proc.pid);
        this.exitCode = code ?? (signal ? 128 : 1);
        this.lines.push(`[${name} exited: ${code ?? signal}]`);
        resolve();
      }),
    );
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (this.lines.length < 20_000) this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.match(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      });
    }
  }

  // waitFor resolves with the first output line (from now on) that matches.
  waitFor(what: string, match: (line: string) => boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${START_TIMEOUT} ms`)), START_TIMEOUT);
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ match, resolve: done });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${this.exitCode} before ${what}:\n${this.lines.slice(-30).join("\n")}`));
      });
    });
  }

  async stop(): Promise<void> {
    if (this.exitCode !== null || this.proc.pid === undefined) return;
    const group = -this.proc.pid;
    try {
      process.kill(group, "SIGTERM");
    } catch {
      return;
    }
    const killed = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    if (!killed) {
      try {
        process.kill(group, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      await this.exited;
    }
  }
}

function jsonLine(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// freePort returns a loopback port nobody listens on right now.
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.listen(0, "127.0.0.1", resolve).once("error", reject));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

// untilServes polls url until it answers 200.
async function untilServes(url: string, child: Child): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT;
  for (;;) {
    try {
      const res = await fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      if (res.status === 200) return;
      if (Date.now() > deadline) throw new Error(`${url} answered ${res.status}`);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${child.name} does not serve ${url}: ${String(err)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startWorld(opts: WorldOptions): Promise<World> {
  const children: Child[] = [];
  const out = await mkdtemp(join(tmpdir(), "custodian-nextjs-e2e-"));
  const stopAll = async () => {
    // Next first (it calls the gateway), then the gateway, then the world.
    for (const c of [...children].reverse()) await c.stop();
    await rm(out, { recursive: true, force: true });
  };
  const logs = () =>
    children.map((c) => `--- ${c.name} (last 25 lines)\n${c.lines.slice(-25).join("\n")}`).join("\n");
  try {
    const port = await freePort();
    const appUrl = `http://localhost:${port}`;

    const demo = new Child("custodian-demo", opts.custodianDemoBin, [
      "--addr", "127.0.0.1:0",
      "--out", out,
      "--gateway", appUrl,
      "--access-token-lifetime", opts.accessTokenLifetime,
      "--log-json",
    ]);
    children.push(demo);
    const ready = jsonLine(await demo.waitFor("ready line", (l) => {
      const v = jsonLine(l);
      return v !== undefined && v.msg === undefined && Array.isArray(v.configs);
    }))!;
    const configs = ready.configs as string[];
    const adminUrl = String(ready.admin);
    const idpOrigin = new URL(String(ready.issuer)).origin;

    const gwArgs = ["--config", configs[0], "--addr", "127.0.0.1:0", "--log-json", "--trusted-proxies", "127.0.0.1/32"];
    const gateway = new Child("custodian", opts.custodianBin, gwArgs);
    children.push(gateway);
    const listening = jsonLine(
      await gateway.waitFor("listening line", (l) => jsonLine(l)?.msg === "custodian is listening"),
    )!;
    const gatewayUrl = `http://${String(listening.listen)}`;

    const next = new Child("next", process.execPath, [opts.nextBin, "start", "-p", String(port), "-H", "127.0.0.1"], {
      cwd: opts.appDir,
      env: { ...process.env, CUSTODIAN_URL: gatewayUrl, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
    });
    children.push(next);
    await untilServes(`http://127.0.0.1:${port}/products`, next);

    return { appUrl, gatewayUrl, adminUrl, idpOrigin, logs, stop: stopAll };
  } catch (err) {
    const text = logs();
    await stopAll();
    throw new Error(`${String(err)}\n${text}`);
  }
}

// Serves one page per path on another origin (127.0.0.1:<port>, another site
// than http://localhost:<P>) for the cross-site tests.
export interface OtherSite {
  origin: string;
  // page makes path answer html.
  page(path: string, html: string): void;
  stop(): Promise<void>;
}

export async function startOtherSite(): Promise<OtherSite> {
  const { createServer: createHttpServer } = await import("node:http");
  const pages = new Map<string, string>();
  const srv = createHttpServer((req, res) => {
    const html = pages.get(new URL(req.url ?? "/", "http://x").pathname);
    if (html === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(html);
  });
  await new Promise<void>((resolve, reject) => srv.listen(0, "127.0.0.1", resolve).once("error", reject));
  const { port } = srv.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    page: (path, html) => void pages.set(path, html),
    stop: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
