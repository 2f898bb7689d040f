// A small Socket.IO v5 client over the browser's WebSocket, written for the
// chat page (components/page) so the page needs no file from another
// project and nothing from the network. It speaks only what the page
// needs: the default namespace, text packets, the websocket transport
// (`/socket.io/?EIO=4&transport=websocket`, no polling), events with and
// without acks, and reconnecting with backoff when the connection drops.
//
// Engine.IO v4 packets (one per websocket frame): `0{...}` open (sid,
// pingInterval, pingTimeout), `1` close, `2` ping (answered `3`), `4...` a
// message carrying a Socket.IO packet. Socket.IO v5 packets: `0` CONNECT
// (sent as `40` or `40{"token":...}`; answered `40{"sid":...}`), `1`
// DISCONNECT, `2` EVENT (`42["name",data]`, with an ack id
// `42<id>["name",data]`), `3` ACK (`43<id>[data]`), `4` CONNECT_ERROR
// (`44{"message":...}`).

/** Reconnect delays: doubled from `BACKOFF_MIN_MS` up to `BACKOFF_MAX_MS`,
 * each drawn between half and all of it, so many pages do not come back at
 * the same instant after a restart. */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;
/** How long an emit waits for its ack. */
const ACK_TIMEOUT_MS = 10000;

export class SocketIoClient {
  /**
   * @param {object} options
   * @param {string} [options.url] the server's origin; this page's by default
   * @param {() => string} [options.token] the handshake token, read on each connect
   * @param {(name: string, data: any) => void} options.onEvent server events
   * @param {(state: string, detail?: string) => void} options.onState
   *   "connecting", "connected", "reconnecting" or "refused"
   * @param {() => void} [options.onConnect] after each successful CONNECT
   */
  constructor(options) {
    this.options = options;
    this.ws = null;
    this.connected = false;
    this.stopped = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pingDeadline = 30000;
    this.nextAckId = 0;
    this.acks = new Map();
    this.everConnected = false;
    // Set by a CONNECT_ERROR until a connect succeeds: the status keeps
    // saying why while we retry.
    this.refused = false;
  }

  /** Opens the connection (and keeps reopening it until `close`). */
  open() {
    this.stopped = false;
    this.#dial();
  }

  /** Closes for good: no reconnect. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.#drop("closed");
  }

  /** Drops the connection and dials again at once (a new token, say, or the
   * browser telling us the network is back). */
  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.refused = false;
    this.#drop("reconnecting");
    this.#dial();
  }

  /** Sends an event without an ack; false when not connected. */
  emit(name, data) {
    return this.#send(name, data, null);
  }

  /** Sends an event and resolves with the ack's first argument; rejects
   * when not connected, on a timeout or when the connection drops first. */
  request(name, data, timeoutMs = ACK_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const id = this.nextAckId++;
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error(`no answer to ${name}`));
      }, timeoutMs);
      this.acks.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      if (!this.#send(name, data, id)) {
        this.acks.delete(id);
        clearTimeout(timer);
        reject(new Error("not connected"));
      }
    });
  }

  #send(name, data, ackId) {
    if (!this.connected || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(`42${ackId === null ? "" : ackId}${JSON.stringify([name, data])}`);
    return true;
  }

  #dial() {
    if (this.stopped || this.ws) return;
    if (!this.refused) {
      this.options.onState(this.everConnected ? "reconnecting" : "connecting");
    }
    const base = new URL(this.options.url || window.location.href);
    const scheme = base.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${base.host}/socket.io/?EIO=4&transport=websocket`);
    } catch (err) {
      this.#scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws === ws && typeof ev.data === "string") this.#onPacket(ev.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.#drop("reconnecting");
      this.#scheduleRetry();
    };
    // An error is always followed by a close, which does the work.
    ws.onerror = () => {};
  }

  /** Forgets the current socket, failing its pending acks. */
  #drop(state) {
    const ws = this.ws;
    this.ws = null;
    clearTimeout(this.pingTimer);
    const wasConnected = this.connected;
    this.connected = false;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch (_) { /* already closing */ }
    }
    for (const pending of this.acks.values()) pending.reject(new Error("connection lost"));
    this.acks.clear();
    if (wasConnected || state === "closed") this.options.onState(state);
  }

  #scheduleRetry() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt = Math.min(this.attempt + 1, 16);
    if (!this.refused) this.options.onState("reconnecting");
    this.retryTimer = setTimeout(() => this.#dial(), delay);
  }

  /** The server pings every pingInterval; no ping within pingInterval +
   * pingTimeout means the connection is dead even if TCP has not said so. */
  #armPingWatch() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.#drop("reconnecting");
      this.#scheduleRetry();
    }, this.pingDeadline);
  }

  #onPacket(text) {
    const kind = text[0];
    const rest = text.slice(1);
    if (kind === "0") {
      // Engine.IO open: start the Socket.IO handshake on `/`.
      let open = {};
      try { open = JSON.parse(rest); } catch (_) { /* defaults */ }
      this.pingDeadline = (open.pingInterval || 25000) + (open.pingTimeout || 20000);
      this.#armPingWatch();
      const token = this.options.token ? this.options.token() : "";
      this.ws.send(token ? `40${JSON.stringify({ token })}` : "40");
    } else if (kind === "2") {
      this.#armPingWatch();
      this.ws.send(`3${rest}`);
    } else if (kind === "1") {
      this.#drop("reconnecting");
      this.#scheduleRetry();
    } else if (kind === "4") {
      this.#onSocketIo(rest);
    }
  }

  #onSocketIo(text) {
    const kind = text[0];
    let i = 1;
    // A namespace other than `/` is written before a comma; we use only `/`.
    if (text[i] === "/") {
      const comma = text.indexOf(",", i);
      const nsp = text.slice(i, comma < 0 ? text.length : comma);
      if (nsp !== "/") return;
      i = comma < 0 ? text.length : comma + 1;
    }
    let digits = "";
    while (i < text.length && text[i] >= "0" && text[i] <= "9") digits += text[i++];
    let payload;
    try {
      payload = i < text.length ? JSON.parse(text.slice(i)) : undefined;
    } catch (_) {
      return;
    }
    if (kind === "0") {
      this.connected = true;
      this.everConnected = true;
      this.refused = false;
      this.attempt = 0;
      this.options.onState("connected");
      if (this.options.onConnect) this.options.onConnect();
    } else if (kind === "4") {
      // CONNECT_ERROR: refused (no or a bad token). Retry, slowly: the
      // user may fix the token meanwhile.
      const why = (payload && payload.message) || "refused";
      const ws = this.ws;
      this.ws = null;
      clearTimeout(this.pingTimer);
      if (ws) { ws.onclose = null; try { ws.close(); } catch (_) { /* closing */ } }
      this.refused = true;
      this.options.onState("refused", why);
      this.attempt = Math.max(this.attempt, 4);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.#dial(), BACKOFF_MAX_MS);
    } else if (kind === "1") {
      this.#drop("reconnecting");
      this.#scheduleRetry();
    } else if (kind === "2" && Array.isArray(payload) && typeof payload[0] === "string") {
      const [name, data] = payload;
      this.options.onEvent(name, data);
      // The page's server never asks for acks; answer empty if it does.
      if (digits && this.ws) this.ws.send(`43${digits}[]`);
    } else if (kind === "3" && digits) {
      const pending = this.acks.get(Number(digits));
      if (pending) {
        this.acks.delete(Number(digits));
        pending.resolve(Array.isArray(payload) ? payload[0] : payload);
      }
    }
  }
}
