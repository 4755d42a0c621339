// Starts a Custodian demo gateway for a test and stops it afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface Gateway {
  // Base URL the gateway listens on, e.g. http://127.0.0.1:41234.
  baseUrl: string;
  // Public URL of the gateway as its log line names it, e.g.
  // http://localhost:41234: the origin browsers use, on another site than
  // the demo identity provider at the listen address.
  publicUrl: string;
  // The gateway's log lines so far (JSON), for diagnosing a failed test.
  logs: string[];
  stop(): Promise<void>;
}

// startGateway runs the binary named by CUSTODIAN_BIN in demo mode on an
// ephemeral loopback port and resolves once it logs that it is listening.
export async function startGateway(): Promise<Gateway> {
  const bin = process.env.CUSTODIAN_BIN;
  if (!bin) {
    throw new Error("CUSTODIAN_BIN must name the custodian binary");
  }
  const child: ChildProcess = spawn(bin, ["--addr", "127.0.0.1:0", "--log-json"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const logs: string[] = [];
  const { baseUrl, publicUrl } = await new Promise<{ baseUrl: string; publicUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("gateway did not start within 30s")), 30_000);
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (logs.length < 10_000) logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; listen?: string; url?: string };
        if (entry.msg === "custodian is listening" && entry.listen) {
          clearTimeout(timer);
          const listenUrl = `http://${entry.listen}`;
          resolve({ baseUrl: listenUrl, publicUrl: (entry.url ?? listenUrl).replace(/\/+$/, "") });
        }
      } catch {
        // Not a log line of ours; ignore.
      }
    });
  });
  return {
    baseUrl,
    publicUrl,
    logs,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
