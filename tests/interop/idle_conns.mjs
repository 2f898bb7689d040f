// Opens N idle Socket.IO connections with the official client
// (socket.io-client 4.x, websocket transport, no reconnection), 200 at a
// time, prints "open N" once they are all connected, and holds them until
// killed. Used by idle_beside_peer.sh.
//
// Usage: node idle_conns.mjs BASE_URL N
import { io } from "socket.io-client";

const [base, n] = [process.argv[2], Number(process.argv[3])];
const sockets = [];
let open = 0;
let failed = 0;
for (let i = 0; i < n; i += 200) {
  const batch = Array.from({ length: Math.min(200, n - i) }, () => new Promise((resolve) => {
    const socket = io(base, { transports: ["websocket"], forceNew: true, reconnection: false });
    sockets.push(socket);
    socket.on("connect", () => { open++; resolve(); });
    socket.on("connect_error", (e) => {
      if (failed++ === 0) console.error("first failed connection:", e.message);
      resolve();
    });
  }));
  await Promise.all(batch);
}
console.log(`open ${open} failed ${failed}`);
setInterval(() => {}, 1 << 30);
