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

async function json(res) {
  return [res.status, await res.json()];
}

const post = (path, body, user) =>
  fetch(`${URL}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(TOKENS && user ? { authorization: `Bearer ${TOKENS[user]}` } : {}),
    },
    body: JSON.stringify(body),
  }).then(json);
const get = (path) => fetch(`${URL}${path}`).then(json);

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
console.log(`socket.io-client interop: ${checks} passed, 0 failed`);
process.exit(0);
