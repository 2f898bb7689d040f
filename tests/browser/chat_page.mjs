// The chat page (components/page, served at `/`) in a real browser: Debian's
// headless Chromium driven by playwright-core, against the `chatroom` binary
// (the default run) started here on a fixed free port with a state
// directory of its own. Two pages (two users, separate browser contexts)
// join one room; a message typed in one shows in the other; a message
// posted over REST shows in both; the server is stopped (both pages say
// "reconnecting…"), a message is posted through the REST component alone
// while the chat is down, the server is started again on the same port and
// state directory, and both pages catch up with `since` and show every
// message exactly once (counted by id). Older history loads on scrolling to
// the top. Later, retention prunes (by a sidecar with a policy, on the same
// file) past what the pages show while they are away: they are told
// `resync_required` and show the newest history instead, with no gap. Screenshots go to target/browser/. Exits non-zero on any failed
// check.
//
// Usage: node tests/browser/chat_page.mjs (after `npm ci` here). Binaries:
// $CHATROOM_BIN_DIR, else `cargo build --workspace --bins` is run and
// ${CARGO_TARGET_DIR:-target}/debug is used. Chromium: $CHROMIUM_BIN, else
// /usr/bin/chromium (Debian's `chromium` package). $PORT picks the port.
// With CHATROOM_LAYOUT=spin-up (and $SPIN_BIN, a Spin CLI, after `spin
// build`), the server is `spin up` with `chatroom-sidecar` in front of it
// on the one origin instead of `chatroom`; both are restarted.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  TIMEOUT, assert, check, failures, finish, freePort, launchBrowser, messageWithText, newPage,
  outDir, root, serverLog, startProcess as start, stopAll, stopProcess, waitHealthy as healthy,
} from "./harness.mjs";

const SEEDED = 60;
const log = serverLog("server.log");
const logFile = log.file;
const startProcess = (name, args, options) => start(log, name, args, options);
const waitHealthy = (url, child) => healthy(url, child, logFile);

async function rest(base, path, body) {
  const res = await fetch(`${base}${path}`, body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// ---------------------------------------------------------------- the page

/** The ids of the message elements, in page order. */
function shownIds(page) {
  return page.$$eval("#messages .msg", (els) => els.map((el) => Number(el.dataset.id)));
}

/** Every id shown once, ascending. */
async function assertNoDuplicates(page, who) {
  const ids = await shownIds(page);
  assert(new Set(ids).size === ids.length, `${who}: duplicate message elements: ${ids}`);
  for (let i = 1; i < ids.length; i += 1) {
    assert(ids[i - 1] < ids[i], `${who}: out of order at ${i}: ${ids.slice(Math.max(0, i - 3), i + 2)}`);
  }
  return ids;
}

async function joinAs(page, url, name, roomId) {
  await page.goto(url);
  await page.fill("#username", name);
  await page.click("#identity button[type=submit]");
  await page.click(`#room-list button[data-room-id="${roomId}"]`);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
  await page.locator("#user-list li", { hasText: name }).waitFor({ timeout: TIMEOUT });
}

// ---------------------------------------------------------------- the run

const port = Number(process.env.PORT) || (await freePort());
const restPort = await freePort();
const url = `http://127.0.0.1:${port}`;
const state = mkdtempSync(join(tmpdir(), "chatroom-browser-"));
const layout = process.env.CHATROOM_LAYOUT || "default";
if (!["default", "spin-up"].includes(layout)) throw new Error(`unknown CHATROOM_LAYOUT ${layout}`);
const spinPort = await freePort();

/** The chat server on `port`: `chatroom`, or `spin up` + the sidecar. */
async function startServer() {
  if (layout === "default") {
    const child = startProcess("chatroom", [
      "--manifest", join(root, "spin.toml"), "--state-dir", state, "--listen", `127.0.0.1:${port}`,
    ]);
    await waitHealthy(url, child);
    return [child];
  }
  const spinUrl = `http://127.0.0.1:${spinPort}`;
  const spin = startProcess(process.env.SPIN_BIN || "spin", [
    "up", "-f", join(root, "spin.toml"), "--state-dir", state, "--listen", `127.0.0.1:${spinPort}`,
  ], { detached: true });
  await waitHealthy(spinUrl, spin);
  const sidecar = startProcess("chatroom-sidecar", [
    "--db", join(state, "sqlite_db.db"), "--listen", `127.0.0.1:${port}`, "--rest-upstream", spinUrl,
  ]);
  await waitHealthy(url, sidecar);
  return [sidecar, spin];
}

async function stopServer(server) {
  for (const child of server) await stopProcess(child);
}

let browser;
let server;
try {
  server = await startServer();

  const room = await rest(url, "/chatrooms", { name: "Browser test" });
  for (let i = 1; i <= SEEDED; i += 1) {
    await rest(url, `/chatrooms/${room.id}/messages`, { sender: "seed", message: `seed message ${i}` });
  }

  await check("GET / is the HTML page, its script and style from /page/", async () => {
    const res = await fetch(`${url}/`);
    assert(res.status === 200, `status ${res.status}`);
    assert((res.headers.get("content-type") || "").startsWith("text/html"), res.headers.get("content-type"));
    const html = await res.text();
    for (const asset of ["/page/app.js", "/page/style.css"]) {
      assert(html.includes(asset), `the page names ${asset}`);
      const a = await fetch(`${url}${asset}`);
      assert(a.status === 200, `${asset}: ${a.status}`);
    }
  });

  browser = await launchBrowser();
  const pageErrors = [];
  const a = await newPage(browser, "alice", { width: 1100, height: 720 }, pageErrors);
  const b = await newPage(browser, "bob", { width: 390, height: 844 }, pageErrors);

  await check("both pages pick names and join the room; each lists both users", async () => {
    await joinAs(a, url, "alice", room.id);
    await joinAs(b, url, "bob", room.id);
    for (const page of [a, b]) {
      for (const name of ["alice", "bob"]) {
        await page.locator("#user-list li", { hasText: name }).waitFor({ timeout: TIMEOUT });
      }
    }
  });

  await check("the latest 50 messages are shown first, oldest at the top", async () => {
    const ids = await assertNoDuplicates(a, "alice");
    assert(ids.length === 50, `alice shows ${ids.length}`);
    assert(ids[49] === SEEDED && ids[0] === SEEDED - 49, `ids ${ids[0]}..${ids[49]}`);
  });

  await check("the name is remembered across a reload", async () => {
    await a.reload();
    assert((await a.inputValue("#username")) === "alice", "the name field after a reload");
    await a.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
    await a.waitForFunction(() => document.querySelectorAll("#messages .msg").length === 50, null, { timeout: TIMEOUT });
  });

  await check("typing in page A shows 'alice is typing…' in page B; clearing the box ends it", async () => {
    await a.fill("#composer-input", "hel");
    await b.locator("#typing", { hasText: "alice is typing…" }).waitFor({ timeout: TIMEOUT });
    assert(((await a.textContent("#typing")) || "") === "", "alice is not shown her own typing");
    await a.fill("#composer-input", "");
    await b.waitForFunction(() => document.querySelector("#typing").textContent === "", null, { timeout: TIMEOUT });
  });

  await check("Enter in page A sends; page B shows it, A shows it once", async () => {
    await a.fill("#composer-input", "hello from alice");
    await a.press("#composer-input", "Enter");
    await messageWithText(b, "hello from alice").waitFor({ timeout: TIMEOUT });
    await messageWithText(a, "hello from alice").waitFor({ timeout: TIMEOUT });
    assert((await messageWithText(a, "hello from alice").count()) === 1, "alice shows it twice");
    assert((await a.inputValue("#composer-input")) === "", "the box is emptied");
  });

  await check("a message posted over REST appears in both pages", async () => {
    await rest(url, `/chatrooms/${room.id}/messages`, { sender: "curl", message: "hello over REST" });
    for (const page of [a, b]) await messageWithText(page, "hello over REST").waitFor({ timeout: TIMEOUT });
  });

  await check("scrolling to the top loads the older history (before=, limit=50)", async () => {
    await b.$eval("#log", (log) => { log.scrollTop = 0; });
    await b.waitForFunction((n) => document.querySelectorAll("#messages .msg").length === n,
      SEEDED + 2, { timeout: TIMEOUT });
    const ids = await assertNoDuplicates(b, "bob");
    assert(ids[0] === 1, `the oldest shown is ${ids[0]}`);
    await b.waitForSelector("#history-start:not([hidden])", { timeout: TIMEOUT });
  });

  let downId;
  await check("the server stops: both pages say reconnecting", async () => {
    await stopServer(server);
    for (const page of [a, b]) {
      await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: TIMEOUT });
      const text = await page.textContent("#status");
      assert(/reconnecting/.test(text), `status says ${text}`);
    }
  });

  await check("a message is posted while the chat is down (the REST host alone)", async () => {
    const restUrl = `http://127.0.0.1:${restPort}`;
    const host = startProcess("chatroom-host", [
      "--manifest", join(root, "spin.toml"), "--state-dir", state, "--listen", `127.0.0.1:${restPort}`,
    ]);
    try {
      await waitHealthy(restUrl, host);
      const m = await rest(restUrl, `/chatrooms/${room.id}/messages`, { sender: "curl", message: "posted while down" });
      downId = m.id;
    } finally {
      await stopProcess(host);
    }
    await new Promise((ok) => setTimeout(ok, 1000));
    for (const page of [a, b]) {
      assert((await messageWithText(page, "posted while down").count()) === 0, "shown before the restart?");
    }
  });

  await check("the server restarts on the same port: both pages reconnect and catch up, no duplicates", async () => {
    server = await startServer();
    for (const [page, who] of [[a, "alice"], [b, "bob"]]) {
      await page.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
      await messageWithText(page, "posted while down").waitFor({ timeout: TIMEOUT });
      const ids = await assertNoDuplicates(page, who);
      assert(ids[ids.length - 1] === downId, `${who}: the newest shown is ${ids[ids.length - 1]}, not ${downId}`);
      await page.locator("#user-list li", { hasText: who }).waitFor({ timeout: TIMEOUT });
    }
    const all = await rest(url, `/chatrooms/${room.id}/messages`);
    const bobIds = await shownIds(b);
    assert(JSON.stringify(bobIds) === JSON.stringify(all.map((m) => m.id)),
      `bob shows ${bobIds.length} of ${all.length} messages`);
  });

  await check("after the restart live messages flow both ways, once each", async () => {
    await b.fill("#composer-input", "bob is back");
    await b.press("#composer-input", "Enter");
    await messageWithText(a, "bob is back").waitFor({ timeout: TIMEOUT });
    await rest(url, `/chatrooms/${room.id}/messages`, { sender: "curl", message: "REST after restart" });
    for (const [page, who] of [[a, "alice"], [b, "bob"]]) {
      await messageWithText(page, "REST after restart").waitFor({ timeout: TIMEOUT });
      await assertNoDuplicates(page, who);
      assert((await messageWithText(page, "bob is back").count()) === 1, `${who}: "bob is back" twice`);
    }
  });

  await check("alice edits her message in the box; bob sees the new text marked (edited)", async () => {
    assert((await b.locator("#messages .msg", { hasText: "hello from alice" }).locator("button.edit").count()) === 0,
      "bob is offered to edit alice's message");
    await a.locator("#messages .msg.mine", { hasText: "hello from alice" }).locator("button.edit").click();
    assert((await a.inputValue("#composer-input")) === "hello from alice", "the box holds the text to edit");
    await a.fill("#composer-input", "hello from alice, edited");
    await a.press("#composer-input", "Enter");
    for (const page of [a, b]) {
      const msg = page.locator("#messages .msg", { hasText: "hello from alice, edited" });
      await msg.locator(".edited").waitFor({ timeout: TIMEOUT });
      assert((await msg.count()) === 1, "the edit replaced the message in place");
    }
  });

  await check("bob reacts with 👍; alice sees 👍 1 from bob; bob takes it back", async () => {
    const onB = b.locator("#messages .msg", { hasText: "hello from alice, edited" });
    await onB.hover();
    await onB.locator('button.reaction[data-emoji="👍"]').click();
    const onA = a.locator("#messages .msg", { hasText: "hello from alice, edited" });
    const reaction = onA.locator('button.reaction[data-emoji="👍"]', { hasText: "👍 1" });
    await reaction.waitFor({ timeout: TIMEOUT });
    assert((await reaction.getAttribute("title")) === "bob", "who reacted is shown");
    await onB.locator('button.reaction[data-emoji="👍"][aria-pressed="true"]').click();
    await onA.locator('button.reaction.offer[data-emoji="👍"]').waitFor({ timeout: TIMEOUT });
  });

  await check("alice deletes it; both pages keep its place, shown as deleted", async () => {
    const before = await shownIds(b);
    await a.locator("#messages .msg.mine", { hasText: "hello from alice, edited" }).locator("button.delete").click();
    for (const page of [a, b]) {
      await page.locator("#messages .msg.deleted", { hasText: "This message was deleted." }).waitFor({ timeout: TIMEOUT });
      assert((await messageWithText(page, "hello from alice, edited").count()) === 0, "the text is gone");
    }
    assert(JSON.stringify(await shownIds(b)) === JSON.stringify(before), "the order is kept");
  });

  await check("retention pruned past what the pages show: they reload the newest history, no gap, no duplicate", async () => {
    // Away: eight messages posted through the REST component alone, all
    // dated an hour ago, then pruned to the newest five by a sidecar with
    // retention on the same file, before the pages can come back.
    await stopServer(server);
    for (const page of [a, b]) await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: TIMEOUT });
    const restUrl = `http://127.0.0.1:${restPort}`;
    const host = startProcess("chatroom-host", [
      "--manifest", join(root, "spin.toml"), "--state-dir", state, "--listen", `127.0.0.1:${restPort}`,
    ]);
    const posted = [];
    try {
      await waitHealthy(restUrl, host);
      for (let i = 1; i <= 8; i += 1) {
        posted.push(await rest(restUrl, `/chatrooms/${room.id}/messages`, { sender: "curl", message: `while away ${i}` }));
      }
    } finally {
      await stopProcess(host);
    }
    const db = join(state, "sqlite_db.db");
    const sql = (statement) => {
      const run = spawnSync("python3", ["-c", `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
rows = c.execute(sys.argv[2]).fetchall()
c.commit()
print(rows[0][0] if rows else "")`, db, statement], { encoding: "utf8" });
      assert(run.status === 0, `python3 sqlite3: ${run.stderr}`);
      return run.stdout.trim();
    };
    sql("UPDATE changes SET at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')");
    const prunePort = await freePort();
    const pruner = startProcess("chatroom-sidecar", [
      "--db", db, "--listen", `127.0.0.1:${prunePort}`,
      "--retention-max-messages", "5", "--retention-interval-secs", "1",
    ]);
    const horizon = posted[2].id;
    try {
      const deadline = Date.now() + TIMEOUT;
      while (Number(sql(`SELECT pruned_through FROM chatrooms WHERE id = ${room.id}`)) !== horizon) {
        assert(Date.now() < deadline, `not pruned through ${horizon}`);
        await new Promise((ok) => setTimeout(ok, 200));
      }
    } finally {
      await stopProcess(pruner);
    }
    server = await startServer();
    const kept = posted.slice(3).map((m) => m.id);
    for (const [page, who] of [[a, "alice"], [b, "bob"]]) {
      await page.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
      await page.locator("#notice", { hasText: "no longer kept" }).waitFor({ timeout: TIMEOUT });
      await messageWithText(page, "while away 8").waitFor({ timeout: TIMEOUT });
      const ids = await assertNoDuplicates(page, who);
      assert(JSON.stringify(ids) === JSON.stringify(kept), `${who} shows ${ids}, not ${kept}`);
    }
  });

  await check("unread: a message in a room bob is not in shows a badge; opening it clears it", async () => {
    const other = await rest(url, "/chatrooms", { name: "Elsewhere" });
    await rest(url, `/chatrooms/${other.id}/messages`, { sender: "curl", message: "first elsewhere" });
    await b.click("#refresh-rooms");
    await b.click(`#room-list button[data-room-id="${other.id}"]`);
    await messageWithText(b, "first elsewhere").waitFor({ timeout: TIMEOUT });
    // Opening a room marks it read (bob has a position there now).
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const unread = await (await fetch(`${url}/users/bob/unread`)).json();
      if ((unread.rooms || []).some((r) => r.room_id === other.id)) break;
      assert(Date.now() < deadline, `bob has no read position in the room: ${JSON.stringify(unread)}`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
    await b.click(`#room-list button[data-room-id="${room.id}"]`);
    await b.waitForSelector('#status[data-state="connected"]', { timeout: TIMEOUT });
    await rest(url, `/chatrooms/${other.id}/messages`, { sender: "curl", message: "while bob is away" });
    const badge = b.locator(`#room-list button[data-room-id="${other.id}"] .badge`, { hasText: "1" });
    try {
      await badge.waitFor({ timeout: TIMEOUT });
    } catch (err) {
      const unread = await (await fetch(`${url}/users/bob/unread`)).json();
      throw new Error(`${err.message}; list: ${await b.innerHTML("#room-list")}; unread: ${JSON.stringify(unread)}`);
    }
    await b.click(`#room-list button[data-room-id="${other.id}"]`);
    await messageWithText(b, "while bob is away").waitFor({ timeout: TIMEOUT });
    await b.waitForFunction((id) => !document.querySelector(`#room-list button[data-room-id="${id}"] .badge`),
      other.id, { timeout: TIMEOUT });
    await b.click(`#room-list button[data-room-id="${room.id}"]`);
  });

  await check("keyboard: every field has a label, focus is visible, Tab reaches the message box", async () => {
    const unlabelled = await a.$$eval("input, textarea",
      (els) => els.filter((el) => el.labels.length === 0).map((el) => el.id));
    assert(unlabelled.length === 0, `unlabelled: ${unlabelled}`);
    await a.focus("#username");
    await a.keyboard.press("Tab");
    const outline = await a.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert(outline !== "none", `the focused element has outline-style ${outline}`);
    let reached = false;
    for (let i = 0; i < 40 && !reached; i += 1) {
      await a.keyboard.press("Tab");
      reached = await a.evaluate(() => document.activeElement && document.activeElement.id === "composer-input");
    }
    assert(reached, "Tab never reached the message box");
    // A message's buttons: arrows in the log pick a message, Tab enters it.
    await a.focus("#log");
    await a.keyboard.press("ArrowUp");
    const picked = await a.evaluate(() => document.activeElement.classList.contains("msg"));
    assert(picked, "ArrowUp in the log focuses the newest message");
    await a.keyboard.press("Tab");
    const inside = await a.evaluate(() => document.activeElement.tagName === "BUTTON"
      && document.activeElement.closest(".msg") !== null);
    assert(inside, "Tab from a focused message reaches its buttons");
  });

  await check("on a phone-sized screen nothing overflows sideways", async () => {
    const overflow = await b.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  });

  await check("no script errors in either page", async () => {
    assert(pageErrors.length === 0, pageErrors.join("; "));
  });

  for (const page of [a, b]) {
    await page.evaluate(() => {
      if (document.activeElement) document.activeElement.blur();
      const log = document.getElementById("log");
      log.scrollTop = log.scrollHeight;
    });
  }
  await a.screenshot({ path: join(outDir, "chat.png") });
  await b.screenshot({ path: join(outDir, "chat-phone.png"), fullPage: true });
  console.log(`screenshots: ${join(outDir, "chat.png")}, ${join(outDir, "chat-phone.png")}`);
} catch (err) {
  failures.push(`setup: ${err && err.message}`);
  console.log(`FAIL ${err && err.stack}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopAll();
  rmSync(state, { recursive: true, force: true });
}

finish(logFile);
