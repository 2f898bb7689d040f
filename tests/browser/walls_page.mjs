// The chat page's walls (docs/protocol.md §10) in a real browser: headless
// Chromium against `chatroom --auth-secret` (or, with
// CHATROOM_LAYOUT=spin-up, `spin up` and `chatroom-sidecar` sharing the
// secret). Two users with tokens from `chatroom token`: alice creates a
// private room that bob cannot see, adds him by name, they talk, she mutes
// him from the member list (his message is refused) and unmutes him, then
// kicks him (his page says so and the room leaves his list); she opens a
// DM with him from the page; in a public room she bans him from the "Here
// now" list and his page can no longer join it. Screenshots go to
// target/browser/. Exits non-zero on any failed check.
//
// Usage: node tests/browser/walls_page.mjs (after `npm ci` here); the same
// environment as chat_page.mjs.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  TIMEOUT, assert, binDir, check, finish, freePort, launchBrowser, messageWithText, newPage,
  outDir, root, serverLog, startProcess, stopAll, waitHealthy,
} from "./harness.mjs";

const SECRET = "browser-walls-secret";
const log = serverLog("walls-server.log");
const layout = process.env.CHATROOM_LAYOUT || "default";
if (!["default", "spin-up"].includes(layout)) throw new Error(`unknown CHATROOM_LAYOUT ${layout}`);

function token(name) {
  const out = spawnSync(join(binDir, "chatroom"), ["--auth-secret", SECRET, "token", name], { encoding: "utf8" });
  assert(out.status === 0, `chatroom token ${name}: ${out.stderr}`);
  return out.stdout.trim();
}

async function startServer(url, port, state) {
  if (layout === "default") {
    const child = startProcess(log, "chatroom", [
      "--manifest", join(root, "spin.toml"), "--state-dir", state, "--listen", `127.0.0.1:${port}`,
      "--auth-secret", SECRET,
    ]);
    await waitHealthy(url, child, log.file);
    return;
  }
  const spinUrl = `http://127.0.0.1:${await freePort()}`;
  const spin = startProcess(log, process.env.SPIN_BIN || "spin", [
    "up", "-f", join(root, "spin.toml"), "--state-dir", state, "--listen", spinUrl.slice(7),
  ], { detached: true, env: { SPIN_VARIABLE_AUTH_SECRET: SECRET } });
  await waitHealthy(spinUrl, spin, log.file);
  // The component makes the schema on its first use of the store.
  await fetch(`${spinUrl}/chatrooms`);
  const sidecar = startProcess(log, "chatroom-sidecar", [
    "--db", join(state, "sqlite_db.db"), "--listen", `127.0.0.1:${port}`, "--rest-upstream", spinUrl,
    "--auth-secret", SECRET,
  ]);
  await waitHealthy(url, sidecar, log.file);
}

/** Opens the page, gives it a token and the name it speaks for. */
async function signIn(page, url, name, bearer) {
  await page.goto(url);
  await page.click("details.token summary");
  await page.fill("#token", bearer);
  await page.dispatchEvent("#token", "change");
  await page.fill("#username", name);
  await page.click("#identity button[type=submit]");
  await page.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
}

function roomButton(page, text) {
  return page.locator("#room-list button.room", { hasText: text });
}

function member(page, name) {
  return page.locator(`#member-list li[data-username="${name}"]`);
}

async function send(page, text) {
  await page.fill("#composer-input", text);
  await page.press("#composer-input", "Enter");
}

const port = Number(process.env.PORT) || (await freePort());
const url = `http://127.0.0.1:${port}`;
const state = mkdtempSync(join(tmpdir(), "chatroom-walls-"));
let browser;
try {
  await startServer(url, port, state);
  const tokens = { alice: token("alice"), bob: token("bob") };
  browser = await launchBrowser();
  const pageErrors = [];
  const a = await newPage(browser, "alice", { width: 1100, height: 760 }, pageErrors);
  const b = await newPage(browser, "bob", { width: 1100, height: 760 }, pageErrors);
  await signIn(a, url, "alice", tokens.alice);
  await signIn(b, url, "bob", tokens.bob);

  await check("alice creates a private room from the page; bob's list does not show it", async () => {
    await a.fill("#new-room-name", "Secret");
    await a.check("#new-room-private");
    await a.click("#new-room button[type=submit]");
    await a.locator("#room-title", { hasText: "Secret (private)" }).waitFor({ timeout: TIMEOUT });
    await member(a, "alice").locator(".role", { hasText: "owner" }).waitFor({ timeout: TIMEOUT });
    // The fence: a public room made after it, which bob's list must show.
    await a.fill("#new-room-name", "Lobby");
    await a.click("#new-room button[type=submit]");
    await a.locator("#room-title", { hasText: "Lobby" }).waitFor({ timeout: TIMEOUT });
    await b.click("#refresh-rooms");
    await roomButton(b, "Lobby").waitFor({ timeout: TIMEOUT });
    assert((await roomButton(b, "Secret").count()) === 0, "bob sees the private room");
    await roomButton(a, "Secret").click();
  });

  await check("alice adds bob by name; bob sees the room, the members and their roles, and no moderation", async () => {
    await a.fill("#add-member-name", "bob");
    await a.selectOption("#add-member-role", "member");
    await a.click("#add-member button[type=submit]");
    await member(a, "bob").locator(".role", { hasText: "member" }).waitFor({ timeout: TIMEOUT });
    await b.click("#refresh-rooms");
    await roomButton(b, "Secret (private)").click();
    await member(b, "alice").locator(".role", { hasText: "owner" }).waitFor({ timeout: TIMEOUT });
    await member(b, "bob").waitFor({ timeout: TIMEOUT });
    assert((await b.locator("#member-list button.moderate").count()) === 0, "bob is offered moderation");
    assert(await b.isHidden("#add-member"), "bob is offered to add people");
    assert((await member(a, "bob").locator("button.moderate").count()) === 4, "alice moderates bob");
  });

  await check("they talk in the private room", async () => {
    await b.locator("#user-list li", { hasText: "bob" }).waitFor({ timeout: TIMEOUT });
    await send(b, "hello in secret");
    await messageWithText(a, "hello in secret").waitFor({ timeout: TIMEOUT });
  });

  await check("alice mutes bob from the member list: his page says muted and his message is refused; unmuted, he talks", async () => {
    await member(a, "bob").locator('button[data-action="mute"]').click();
    await member(b, "bob").locator(".muted-note").waitFor({ timeout: TIMEOUT });
    await send(b, "muted words");
    await b.locator("#notice", { hasText: "muted" }).waitFor({ timeout: TIMEOUT });
    await member(a, "bob").locator('button[data-action="unmute"]').click();
    await b.waitForFunction(
      () => !document.querySelector('#member-list li[data-username="bob"] .muted-note'),
      null, { timeout: TIMEOUT });
    await send(b, "unmuted words");
    await messageWithText(a, "unmuted words").waitFor({ timeout: TIMEOUT });
    assert((await a.locator("#messages .msg .content", { hasText: /^muted words$/ }).count()) === 0,
      "the muted message was stored");
  });

  await check("alice kicks bob: his page says so, closes the room and drops it from his list", async () => {
    await member(a, "bob").locator('button[data-action="kick"]').click();
    await b.locator("#notice", { hasText: "kicked out of Secret (private) by alice" }).waitFor({ timeout: TIMEOUT });
    await b.locator("#room-title", { hasText: "Pick a room" }).waitFor({ timeout: TIMEOUT });
    await b.waitForFunction(() => !document.querySelector('#room-list button[data-visibility="private"]'),
      null, { timeout: TIMEOUT });
    assert((await b.locator("#messages .msg").count()) === 0, "bob still shows the room's messages");
    await a.waitForFunction(() => !document.querySelector('#member-list li[data-username="bob"]'),
      null, { timeout: TIMEOUT });
  });

  await check("alice opens a DM with bob from the page; bob finds @alice and they talk", async () => {
    await a.fill("#dm-with", "bob");
    await a.click("#new-dm button[type=submit]");
    await a.locator("#room-title", { hasText: "@bob" }).waitFor({ timeout: TIMEOUT });
    assert(await a.isHidden("#add-member"), "a DM offers to add people");
    await b.click("#refresh-rooms");
    await roomButton(b, "@alice").click();
    await b.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
    await b.locator("#user-list li", { hasText: "bob" }).waitFor({ timeout: TIMEOUT });
    await send(b, "psst");
    await messageWithText(a, "psst").waitFor({ timeout: TIMEOUT });
  });

  await check("in a public room alice bans bob from 'Here now': his page says so and cannot join again", async () => {
    await roomButton(a, "Lobby").click();
    await roomButton(b, "Lobby").click();
    const bobHere = a.locator("#user-list li", { hasText: "bob" });
    await bobHere.locator('button[data-action="ban"]').waitFor({ timeout: TIMEOUT });
    await bobHere.locator('button[data-action="ban"]').click();
    await b.locator("#notice", { hasText: "banned from Lobby by alice" }).waitFor({ timeout: TIMEOUT });
    await roomButton(b, "Lobby").click();
    await b.locator("#notice", { hasText: "Could not join: You are banned" }).waitFor({ timeout: TIMEOUT });
    await a.screenshot({ path: join(outDir, "walls.png") });
  });

  await check("no script errors in either page", async () => {
    assert(pageErrors.length === 0, pageErrors.join("; "));
  });
  console.log(`screenshot: ${join(outDir, "walls.png")}`);
} catch (err) {
  console.log(`FAIL ${err && err.stack}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopAll();
  rmSync(state, { recursive: true, force: true });
}
if (process.exitCode) process.exit(process.exitCode);
finish(log.file);
