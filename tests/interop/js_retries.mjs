// At-least-once sends with the official JavaScript client (socket.io-client
// 4.x, docs/protocol.md §3.5 "Idempotent sends"): `retries: 5` with a 1 ms
// `ackTimeout` resends a packet whose ack is late, and a send the client gave
// up on is sent again with the same `client_id`. Every message must be
// stored exactly once: none missing, no duplicate. Against CHATROOM_URL,
// RETRY_SENDS messages (default 1000). Exits non-zero on failure.
import { io } from "socket.io-client";

const URL = process.env.CHATROOM_URL ?? "http://127.0.0.1:3000";
const N = Number(process.env.RETRY_SENDS ?? 1000);

function fail(what) {
  console.error(`FAILED: ${what}`);
  process.exit(1);
}

const created = await fetch(`${URL}/chatrooms`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ name: `retries ${Date.now()}` }),
});
if (created.status !== 201) fail(`room: ${created.status}`);
const room = await created.json();

const socket = io(URL, { transports: ["websocket"], reconnection: false, retries: 5, ackTimeout: 1 });
await new Promise((ok, bad) => {
  socket.on("connect", ok);
  socket.on("connect_error", bad);
});

let givenUp = 0;
for (let i = 0; i < N; i += 1) {
  const payload = { room_id: room.id, sender: "retrier", message: `r${i}`, client_id: `retry-${i}` };
  for (;;) {
    let ack;
    try {
      ack = await socket.emitWithAck("send_message", payload);
    } catch (_) {
      // Five retries without an ack in time: send it again, same key.
      givenUp += 1;
      continue;
    }
    if (ack && ack.ok) break;
    fail(`send ${i}: ${JSON.stringify(ack)}`);
  }
}
socket.close();

const history = await (await fetch(`${URL}/chatrooms/${room.id}/messages`)).json();
const contents = history.map((m) => m.content);
const distinct = new Set(contents);
if (distinct.size !== N) fail(`${distinct.size} of ${N} messages stored`);
if (contents.length !== N) fail(`${contents.length - N} duplicates stored`);
console.log(
  `socket.io-client retries: ${N} sends (retries 5, ackTimeout 1 ms), ${contents.length} stored, ` +
    `0 missing, 0 duplicates (${givenUp} sends given up by the client and sent again)`,
);
