// What the browser tests share: checks that are counted and reported, the
// binaries (built once), processes started and stopped, free ports,
// waiting for a server, and a headless Chromium kept off the network.
// Each test script (chat_page.mjs, walls_page.mjs) runs its own server and
// pages on top of this.

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(process.env.CARGO_TARGET_DIR)
  : join(root, "target");
export const outDir = join(root, "target/browser");
mkdirSync(outDir, { recursive: true });

if (!process.env.CHATROOM_BIN_DIR) {
  const built = spawnSync("cargo", ["build", "--workspace", "--bins"], { cwd: root, stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status || 1);
}
export const binDir = process.env.CHATROOM_BIN_DIR || join(targetDir, "debug");
const chromiumBin = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

export const TIMEOUT = 20000;

// ---------------------------------------------------------------- checks

export const failures = [];
export async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (err) {
    failures.push(name);
    console.log(`FAIL ${name}\n     ${String(err && err.stack || err).split("\n").slice(0, 4).join("\n     ")}`);
  }
}
export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Prints the outcome and exits non-zero when a check failed. */
export function finish(logFile) {
  if (failures.length) {
    console.log(`\n${failures.length} check(s) failed (server log: ${logFile})`);
    process.exit(1);
  }
  console.log("\nall browser checks passed");
}

// ---------------------------------------------------------------- processes

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

export const children = new Set();

/** A log file in target/browser/ that started processes write to. */
export function serverLog(name) {
  const file = join(outDir, name);
  return { file, fd: openSync(file, "w") };
}

export function startProcess(log, name, args, { detached = false, env = {} } = {}) {
  // `spin up` runs its trigger as a child of its own: it gets a process
  // group, and the whole group is stopped.
  const program = name.startsWith("chatroom") ? join(binDir, name) : name;
  const child = spawn(program, args, {
    cwd: root,
    detached,
    stdio: ["ignore", log.fd, log.fd],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn", ...env },
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  const signal = (sig) => {
    try {
      if (child.spawnargs[1] === "up") process.kill(-child.pid, sig); else child.kill(sig);
    } catch (_) { /* gone */ }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 10000);
  await exited;
  clearTimeout(timer);
}

export async function stopAll() {
  for (const child of [...children]) await stopProcess(child);
}

export async function waitHealthy(url, child, logFile) {
  const deadline = Date.now() + 180000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (see ${logFile})`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`${url} did not come up (see ${logFile})`);
}

// ---------------------------------------------------------------- the browser

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumBin,
    headless: true,
    // playwright-core gives every launch a fresh temporary profile
    // (--user-data-dir); the rest keeps Chromium off the network, which
    // this machine does not have.
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** A page in a context of its own; its script errors go to `errors`. */
export async function newPage(browser, who, viewport, errors) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(`${who}: ${err.message}`));
  return page;
}

export function messageWithText(page, text) {
  return page.locator("#messages .msg .content", { hasText: text });
}
