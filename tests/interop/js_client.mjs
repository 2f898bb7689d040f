// docs/protocol.md §3 with the official JavaScript client (socket.io-client 4.x) and
// fetch for REST, against a running chatroom at CHATROOM_URL (default
// http://127.0.0.1:3000). Exits non-zero on the first failed check.
import { io } from "socket.io-client";

const URL = process.env.CHATROOM_URL ?? "http://127.0.0.1:3000";
// With auth on, the run script passes a token per user (`chatroom token`).
const TOKENS = process.env.CHATROOM_TOKENS ? JSON.parse(process.env.CHATROOM_TOKENS) : null;
const PATIENCE = 10_000;
let checks = 0;

function check(cond, what) {
  if (!cond) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  checks += 1;
}

function client(user) {
  const auth = TOKENS && user ? { token: TOKENS[user] } : undefined;
  const socket = io(URL, { transports: ["websocket"], reconnection: false, auth });
  const queues = new Map();
  const waiters = new Map();
  for (const event of ["user_joined", "user_left", "new_message", "error"]) {
    socket.on(event, (data) => {
      const w = waiters.get(event);
      if (w && w.length) w.shift()(data);
      else (queues.get(event) ?? queues.set(event, []).get(event)).push(data);
    });
  }
  return {
    socket,
    connected: new Promise((ok, fail) => {
      socket.on("connect", ok);
      socket.on("connect_error", fail);
    }),
    next(event) {
      const q = queues.get(event);
      if (q && q.length) return Promise.resolve(q.shift());
      return new Promise((ok, fail) => {
        (waiters.get(event) ?? waiters.set(event, []).get(event)).push(ok);
        setTimeout(() => fail(new Error(`no ${event} in time`)), PATIENCE);
      });
    },
    call(event, data) {
      return socket.timeout(PATIENCE).emitWithAck(event, data);
    },
  };
}

/** A REST request as `user` (a body, if any, as JSON); `[status, body]`. */
const rest = (method, path, body, user) =>
  fetch(`${URL}${path}`, {
    method,
    headers: {
      ...(body ? { "content-type": "application/json" } : {}),
      ...(TOKENS && user ? { authorization: `Bearer ${TOKENS[user]}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  }).then(async (res) => [res.status, res.status === 204 ? null : await res.json()]);
const post = (path, body, user) => rest("POST", path, body, user);
const get = (path) => rest("GET", path);

/** A client that records every event it receives, in arrival order. */
async function recorder(user) {
  const auth = TOKENS ? { token: TOKENS[user] } : undefined;
  const socket = io(URL, { transports: ["websocket"], reconnection: false, auth });
  const seen = [];
  let wake = () => {};
  socket.onAny((event, data) => {
    seen.push([event, data]);
    wake();
  });
  await new Promise((ok, fail) => {
    socket.on("connect", ok);
    socket.on("connect_error", fail);
  });
  // Resolves on the next event, or after 100 ms at the most.
  const arrival = () =>
    new Promise((ok) => {
      wake = ok;
      setTimeout(ok, 100);
    });
  return {
    socket,
    call: (event, data) => socket.timeout(PATIENCE).emitWithAck(event, data),
    /** The next `n` unseen events named any of `names`, in arrival order. */
    async take(names, n) {
      const deadline = Date.now() + PATIENCE;
      const out = [];
      while (out.length < n) {
        const i = seen.findIndex(([name]) => names.includes(name));
        if (i >= 0) out.push(seen.splice(i, 1)[0]);
        else if (Date.now() > deadline) throw new Error(`${user}: ${out.length} of ${n} ${names} in time`);
        else await arrival();
      }
      return out;
    },
    /** The first unseen `event`, waiting for it. */
    async next(event) {
      return (await this.take([event], 1))[0][1];
    },
    has: (event) => seen.some(([name]) => name === event),
  };
}

const CHANGES = ["new_message", "message_edited", "message_deleted", "reaction_added", "reaction_removed"];

/** docs/protocol.md §3.3-3.8: edit, delete, reactions, typing, read state
 * and a `since` catch-up that replays them, over sockets and REST. */
async function conversations() {
  const [created, roomObj] = await post("/chatrooms", { name: `js-talk-${Date.now()}` }, "alice");
  check(created === 201, `create the conversation room: ${created}`);
  const room = roomObj.id;
  const alice = await recorder("alice");
  const bob = await recorder("bob");
  for (const [c, name] of [[alice, "alice"], [bob, "bob"]]) {
    const joined = await c.call("join_room", { room_id: room, username: name });
    check(joined.ok === true, `${name} joins: ${JSON.stringify(joined)}`);
  }
  const sent = await alice.call("send_message", { room_id: room, message: "frist" });
  check(sent.ok === true, `send: ${JSON.stringify(sent)}`);
  const m1 = sent.message.id;
  for (const c of [alice, bob]) check((await c.next("new_message")).id === m1, "the message reaches both");

  // Typing reaches the others, not the typist, and is never a change.
  const typing = await bob.call("typing", { room_id: room, typing: true });
  check(typing.ok === true && typing.typing === true, `typing ack: ${JSON.stringify(typing)}`);
  let t = await alice.next("typing");
  check(t.username === "bob" && t.typing === true && t.room_id === room, `alice sees bob typing: ${JSON.stringify(t)}`);
  await bob.call("typing", { room_id: room, typing: false });
  t = await alice.next("typing");
  check(t.username === "bob" && t.typing === false, `bob stopped typing: ${JSON.stringify(t)}`);
  check(!bob.has("typing"), "the typist is not told of his own typing");

  // Only the sender edits; every member sees the edit.
  const edited = await alice.call("edit_message", { room_id: room, message_id: m1, message: "first" });
  check(edited.ok === true && edited.message.content === "first" && edited.message.version === 2,
    `edit ack: ${JSON.stringify(edited)}`);
  for (const c of [alice, bob]) {
    const e = await c.next("message_edited");
    check(e.message_id === m1 && e.message.content === "first" && typeof e.message.edited_at === "string",
      `message_edited: ${JSON.stringify(e)}`);
  }
  const stolen = await bob.call("edit_message", { room_id: room, message_id: m1, message: "mine now" });
  check(stolen.ok === false && stolen.code === "not_sender", `bob may not edit: ${JSON.stringify(stolen)}`);
  check((await bob.next("error")).code === "not_sender", "not_sender error event");
  const [patched, patchBody] = await rest("PATCH", `/chatrooms/${room}/messages/${m1}`, { sender: "bob", message: "x" }, "bob");
  check(patched === 403 && patchBody.code === "not_sender", `REST edit by another: ${patched}`);

  // Reactions, over a socket and over REST, aggregated per emoji.
  const liked = await bob.call("add_reaction", { room_id: room, message_id: m1, emoji: "👍" });
  check(liked.ok === true, `add_reaction ack: ${JSON.stringify(liked)}`);
  for (const c of [alice, bob]) {
    const r = await c.next("reaction_added");
    check(r.emoji === "👍" && r.username === "bob" && JSON.stringify(r.message.reactions) ===
      JSON.stringify([{ emoji: "👍", count: 1, users: ["bob"] }]), `reaction_added: ${JSON.stringify(r)}`);
  }
  const bad = await bob.call("add_reaction", { room_id: room, message_id: m1, emoji: "not one" });
  check(bad.ok === false && bad.code === "invalid_emoji", `a bad emoji: ${JSON.stringify(bad)}`);
  check((await bob.next("error")).code === "invalid_emoji", "invalid_emoji error event");
  const [put, tada] = await rest("PUT", `/chatrooms/${room}/messages/${m1}/reactions/${encodeURIComponent("👍")}`,
    { username: "carol" }, "carol");
  check(put === 200 && tada.reactions[0].count === 2, `REST reaction: ${put} ${JSON.stringify(tada)}`);
  for (const c of [alice, bob]) check((await c.next("reaction_added")).username === "carol", "REST reaction reaches both");

  // Read state: a receipt when asked for, unread counts that skip one's own and the deleted.
  const read = await bob.call("mark_read", { room_id: room, message_id: m1, receipt: true });
  check(read.ok === true && read.last_read_id === m1 && read.unread === 0, `mark_read ack: ${JSON.stringify(read)}`);
  const receipt = await alice.next("read");
  check(receipt.username === "bob" && receipt.message_id === m1, `read receipt: ${JSON.stringify(receipt)}`);
  const second = await alice.call("send_message", { room_id: room, message: "second" });
  const m2 = second.message.id;
  for (const c of [alice, bob]) check((await c.next("new_message")).id === m2, "the second message reaches both");
  const unread = async () => {
    const [status, body] = await rest("GET", `/users/bob/unread`, null, "bob");
    check(status === 200, `unread: ${status}`);
    return body.rooms.find((r) => r.room_id === room).unread;
  };
  check((await unread()) === 1, "bob has one unread");

  // Delete: a tombstone everyone sees; editing it is a conflict.
  const gone = await alice.call("delete_message", { room_id: room, message_id: m2 });
  check(gone.ok === true && gone.deleted === true, `delete ack: ${JSON.stringify(gone)}`);
  for (const c of [alice, bob]) {
    const d = await c.next("message_deleted");
    check(d.message_id === m2 && d.message.deleted === true && d.message.content === "", `message_deleted: ${JSON.stringify(d)}`);
  }
  check((await unread()) === 0, "a deleted message is not unread");
  const [conflict, conflictBody] = await rest("PATCH", `/chatrooms/${room}/messages/${m2}`, { sender: "alice", message: "back" }, "alice");
  check(conflict === 409 && conflictBody.code === "message_deleted", `editing a tombstone: ${conflict}`);
  const [, history] = await get(`/chatrooms/${room}/messages`);
  check(history.length === 2 && history[1].deleted === true && history[0].version === 2, "history shows the edit and the tombstone");

  // Away and back: `since` replays every change once, in order, as it is now.
  const late = await recorder("late");
  const back = await late.call("join_room", { room_id: room, username: "late", since: m1 - 1 });
  check(back.ok === true && back.replayed === 6, `catch-up ack: ${JSON.stringify(back)}`);
  const replay = await late.take(CHANGES, 6);
  check(JSON.stringify(replay.map(([e]) => e)) === JSON.stringify(
    ["new_message", "message_edited", "reaction_added", "reaction_added", "new_message", "message_deleted"]),
    `replayed in order: ${JSON.stringify(replay.map(([e]) => e))}`);
  const seqs = replay.map(([e, d]) => (e === "new_message" ? d.id : d.seq));
  check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `replayed by seq: ${seqs}`);
  check(replay[0][1].content === "first" && replay[4][1].content === "" && replay[4][1].deleted === true,
    "the replay carries messages as they are now (no deleted text)");
  check(!late.has("typing") && !late.has("read"), "typing and receipts are not replayed");
  for (const c of [alice, bob, late]) c.socket.disconnect();
}

if (TOKENS) {
  // Auth on: no token, no connection; no token, no write; no spoofing.
  const anonymous = client(null);
  const refused = await anonymous.connected.then(() => null, (e) => e);
  check(refused && refused.message === "unauthorized", `connect_error: ${refused && refused.message}`);
  anonymous.socket.disconnect();
  const [s401, e401] = await post("/chatrooms", { name: `js-anon-${Date.now()}` });
  check(s401 === 401 && e401.code === "unauthorized", "REST write without a token");
}

const [status, roomObj] = await post("/chatrooms", { name: `js-${Date.now()}` }, "alice");
check(status === 201, `create room: ${status}`);
const room = roomObj.id;

const alice = client("alice");
const bob = client("bob");
await alice.connected;
await bob.connected;
let ack = await alice.call("join_room", { room_id: room, username: "alice" });
check(ack.ok === true, `join ack ${JSON.stringify(ack)}`);
check((await alice.next("user_joined")).username === "alice", "alice joined");
await bob.call("join_room", { room_id: room, username: "bob" });
check((await alice.next("user_joined")).username === "bob", "alice sees bob");
check((await bob.next("user_joined")).username === "bob", "bob sees himself");
check((await get(`/chatrooms/${room}/users`))[1].user_count === 2, "two users");

ack = await alice.call("send_message", { room_id: room, message: "Hi" });
check(ack.ok === true && ack.message.sender === "alice", `send ack ${JSON.stringify(ack)}`);
for (const c of [alice, bob]) {
  const m = await c.next("new_message");
  check(m.content === "Hi" && m.id === ack.message.id, "socket message reaches both");
}
// At-least-once: a send repeated with its client_id is one message,
// delivered once (the REST message below is the fence).
const keyed = { room_id: room, message: "once", client_id: "js-once-1" };
const once = await alice.call("send_message", keyed);
const twice = await alice.call("send_message", keyed);
check(once.ok === true && twice.ok === true && once.message.id === twice.message.id,
  `a repeated client_id is one message ${JSON.stringify([once, twice])}`);
for (const c of [alice, bob]) {
  check((await c.next("new_message")).id === once.message.id, "the keyed message reaches both once");
}
if (TOKENS) {
  const [s403, e403] = await post(`/chatrooms/${room}/messages`, { sender: "alice", message: "spoof" }, "carol");
  check(s403 === 403 && e403.code === "sender_mismatch", "REST spoofing refused");
  const spoof = await bob.call("send_message", { room_id: room, sender: "alice", message: "spoof" });
  check(spoof.ok === false && spoof.code === "sender_mismatch", "socket spoofing refused");
  check((await bob.next("error")).code === "sender_mismatch", "spoofing error event");
}
const [s2, posted] = await post(`/chatrooms/${room}/messages`, { sender: "carol", message: "via REST" }, "carol");
check(s2 === 201, "REST post");
for (const c of [alice, bob]) {
  const m = await c.next("new_message");
  check(JSON.stringify(m) === JSON.stringify(posted), "REST message reaches both");
}

bob.socket.disconnect();
const left = await alice.next("user_left");
check(left.username === "bob" && left.room_id === room, "user_left on disconnect");
const [, users] = await get(`/chatrooms/${room}/users`);
check(users.user_count === 1 && users.users[0] === "alice", "count drops");

ack = await alice.call("join_room", { room_id: 999999 });
check(ack.ok === false && ack.code === "room_not_found", "missing room ack");
const err = await alice.next("error");
check(err.code === "room_not_found" && err.error === "Chatroom not found", "error event");

const late = client("late");
await late.connected;
await late.call("join_room", { room_id: room, username: "late", since: posted.id - 1 });
const replayed = await late.next("new_message");
check(replayed.id === posted.id, "catch-up with since");

// The client's default transports: long-polling first, then the upgrade
// to websocket (what a browser using socket.io-client does).
const upgrading = io(URL, { reconnection: false, auth: TOKENS ? { token: TOKENS.late } : undefined });
let opened = null;
upgrading.io.on("open", () => (opened = upgrading.io.engine.transport.name));
await new Promise((ok, fail) => {
  upgrading.on("connect", ok);
  upgrading.on("connect_error", fail);
});
check(opened === "polling", `opened on ${opened}`);
if (upgrading.io.engine.transport.name !== "websocket") {
  await new Promise((ok, fail) => {
    upgrading.io.engine.once("upgrade", ok);
    setTimeout(() => fail(new Error("no upgrade to websocket in time")), PATIENCE);
  });
}
check(upgrading.io.engine.transport.name === "websocket", "upgraded to websocket");
const upgradedAck = await upgrading.timeout(PATIENCE).emitWithAck("join_room", { room_id: room, username: "late" });
check(upgradedAck.ok === true, `join after the upgrade: ${JSON.stringify(upgradedAck)}`);
upgrading.disconnect();

alice.socket.disconnect();
late.socket.disconnect();

await conversations();
console.log(`socket.io-client interop: ${checks} passed, 0 failed`);
process.exit(0);
