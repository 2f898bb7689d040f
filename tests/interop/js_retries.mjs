// At-least-once sends with the official JavaScript client (socket.io-client
// 4.x, docs/protocol.md §3.5 "Idempotent sends"): `retries: 5` with a 1 ms
// `ackTimeout` resends a packet whose ack is late, and a send the client gave
// up on is sent again with the same `client_id`. Every message must be
// stored exactly once: none missing, no duplicate. Against CHATROOM_URL,
// RETRY_SENDS messages (default 1000). A message the client gave up on is
// sent again with a timeout four times longer each time (1, 4, 16 ms...,
// at most 5 s), as a client should back off: a store slower than the
// whole retry budget (an fsync on a slow disk, edge mode's HTTP round
// trip) would otherwise never be acknowledged in time, each attempt
// queueing behind the last. Exits non-zero on failure.
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

const ACK_TIMEOUT = 1;
const socket = io(URL, { transports: ["websocket"], reconnection: false, retries: 5, ackTimeout: ACK_TIMEOUT });
await new Promise((ok, bad) => {
  socket.on("connect", ok);
  socket.on("connect_error", bad);
});

let givenUp = 0;
let refused = 0;
for (let i = 0; i < N; i += 1) {
  const payload = { room_id: room.id, sender: "retrier", message: `r${i}`, client_id: `retry-${i}` };
  for (let gaveUp = 0; ; ) {
    let ack;
    try {
      const timeout = Math.min(ACK_TIMEOUT * 4 ** gaveUp, 5000);
      ack = await socket.timeout(timeout).emitWithAck("send_message", payload);
    } catch (_) {
      // Five retries without an ack in time: send it again, same key,
      // with a longer timeout.
      givenUp += 1;
      gaveUp += 1;
      continue;
    }
    if (ack && ack.ok) break;
    // Refused as a flood (a slow store, e.g. edge mode, lets retries
    // fill the connection's queue): wait a moment and send it again.
    if (ack && ack.code === "rate_limited") {
      refused += 1;
      await new Promise((ok) => setTimeout(ok, 20));
      continue;
    }
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
  `socket.io-client retries: ${N} sends (retries 5, ackTimeout ${ACK_TIMEOUT} ms), ${contents.length} stored, ` +
    `0 missing, 0 duplicates (${givenUp} sends given up by the client and sent again, ${refused} refused as a flood and sent again)`,
);
