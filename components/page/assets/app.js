// The chat page's behaviour (components/page, served as /page/app.js):
// rooms, a name, history with older pages on scroll, live messages, who is
// here, and sending, over this origin's REST API and Socket.IO (the client
// in ./socketio.js). A dropped connection or a restarted server is ridden
// out: the client reconnects with backoff, the page rejoins its room with
// `since` = the highest message id it has, and every message is shown once,
// in id order, whichever way (history, replay, live, own ack) it arrived.

import { SocketIoClient } from "./socketio.js";

/** Messages per history page (the REST `limit`). */
const PAGE = 50;
/** Within this many pixels of the top of the log, older messages load. */
const OLDER_THRESHOLD_PX = 80;

const $ = (id) => document.getElementById(id);

/** localStorage that never throws (private modes, disabled storage). */
const saved = {
  get(key) {
    try { return window.localStorage.getItem(key) || ""; } catch (_) { return ""; }
  },
  set(key, value) {
    try { window.localStorage.setItem(key, value); } catch (_) { /* not kept */ }
  },
};

const state = {
  username: saved.get("chatroom.username"),
  token: saved.get("chatroom.token"),
  rooms: [],
  /** The open room: {id, name}. */
  room: null,
  /** Bumped on every room switch: late answers for the old room are dropped. */
  generation: 0,
  /** Joined (or joining) over the current connection; false after a drop. */
  joined: false,
  /** The latest history page has been read for this room. */
  historyLoaded: false,
  /** Message id → its element, and the ids shown, sorted. */
  shown: new Map(),
  ids: [],
  /** The oldest message of the room is shown. */
  atStart: false,
  loadingOlder: false,
  /** Others typing in the open room: username → the timer that forgets them. */
  typists: new Map(),
  /** When this page last told the room it is typing (ms), 0 when not typing. */
  typingSince: 0,
  /** The newest change (`seq`) of the open room seen: where a rejoin resumes. */
  seq: 0,
  /** How far retention pruned the open room, once a join was told. */
  keptAfter: 0,
  /** The message being edited in the message box, or null. */
  editing: null,
  /** Room id → unread messages, from `GET /users/{name}/unread`. */
  unread: new Map(),
  /** The newest message id marked read in the open room. */
  readUpTo: 0,
  /** The open room's members ({username, role, muted}), and this user's role there. */
  members: [],
  myRole: null,
  /** The text being sent, its room and its `client_id`, until it is stored. */
  sending: null,
};

/** Roles by rank (docs/protocol.md §10.2). */
const RANK = { member: 1, moderator: 2, owner: 3 };

/** The reactions offered on every message. */
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮"];

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, options = {}) {
  const headers = { accept: "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---------------------------------------------------------------- status and notices

const STATUS_TEXT = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  closed: "disconnected",
};

function showStatus(kind, detail) {
  const el = $("status");
  el.dataset.state = kind;
  el.textContent = kind === "refused"
    ? `refused by the server (${detail}): check the token`
    : STATUS_TEXT[kind] || kind;
}

let noticeTimer = null;
function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

// ---------------------------------------------------------------- rooms

async function loadRooms() {
  try {
    state.rooms = await api("/chatrooms");
  } catch (err) {
    notice(`Could not load the rooms: ${err.message}`);
    return;
  }
  renderRooms();
  loadUnread();
}

/** Unread counts per room for the chosen name (rooms it has read in). */
async function loadUnread() {
  if (!state.username) return;
  let unread;
  try {
    unread = await api(`/users/${encodeURIComponent(state.username)}/unread`);
  } catch (_) {
    return;
  }
  state.unread = new Map((unread.rooms || []).map((r) => [r.room_id, r.unread]));
  renderRooms();
}

function renderRooms() {
  const list = $("room-list");
  list.replaceChildren();
  if (state.rooms.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No rooms yet: create one below.";
    list.append(li);
  }
  for (const room of state.rooms) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "room";
    button.dataset.roomId = String(room.id);
    button.dataset.visibility = room.visibility || "public";
    button.textContent = roomLabel(room);
    const unread = state.room && state.room.id === room.id ? 0 : state.unread.get(room.id) || 0;
    if (unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(unread);
      badge.title = `${unread} unread`;
      button.append(" ", badge);
    }
    if (state.room && state.room.id === room.id) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => selectRoom(room));
    li.append(button);
    list.append(li);
  }
}

/** A room's name as the page shows it: `@name` for a DM (its other
 * member), `Name (private)` for a private room. */
function roomLabel(room) {
  if (room.visibility === "dm") {
    const names = room.name.split(", ");
    return `@${names.find((n) => n !== state.username) || names[0]}`;
  }
  return room.visibility === "private" ? `${room.name} (private)` : room.name;
}

async function createRoom(event) {
  event.preventDefault();
  const input = $("new-room-name");
  const name = input.value.trim();
  if (!name) return;
  const body = { name };
  // Only a private room says so: servers without identity take public ones.
  if ($("new-room-private").checked) body.visibility = "private";
  try {
    const room = await api("/chatrooms", { method: "POST", body });
    input.value = "";
    $("new-room-private").checked = false;
    await loadRooms();
    selectRoom(room);
  } catch (err) {
    notice(`Could not create the room: ${err.message}`);
  }
}

/** `POST /dms`: the one room of this user and another, then open it. */
async function openDm(event) {
  event.preventDefault();
  const input = $("dm-with");
  const other = input.value.trim();
  if (!other) return;
  try {
    const room = await api("/dms", { method: "POST", body: { with: other } });
    input.value = "";
    await loadRooms();
    selectRoom(room);
  } catch (err) {
    notice(`Could not open the direct message: ${err.message}`);
  }
}

function selectRoom(room) {
  if (state.room && state.room.id === room.id) return;
  if (state.room && state.joined) socket.emit("leave_room", { room_id: state.room.id });
  stopTyping();
  clearTypists();
  stopEditing();
  markRead();
  state.generation += 1;
  state.seq = 0;
  state.keptAfter = 0;
  state.readUpTo = 0;
  state.room = { id: room.id, name: room.name, visibility: room.visibility || "public" };
  state.joined = false;
  state.historyLoaded = false;
  state.shown.clear();
  state.ids = [];
  state.atStart = false;
  state.loadingOlder = false;
  saved.set("chatroom.room", String(room.id));
  if (window.location.hash !== `#room=${room.id}`) {
    window.history.replaceState(null, "", `#room=${room.id}`);
  }
  $("room-title").textContent = roomLabel(room);
  document.title = `${roomLabel(room)} · chatroom`;
  $("messages").replaceChildren();
  $("user-list").replaceChildren();
  $("user-count").textContent = "";
  state.members = [];
  state.myRole = null;
  renderMembers(room);
  renderRooms();
  updateControls();
  openRoom(state.generation);
  loadMembers();
}

/** Leaves the open room's view (after a removal): nothing is shown of it. */
function closeRoom() {
  stopTyping();
  clearTypists();
  stopEditing();
  state.generation += 1;
  state.room = null;
  state.joined = false;
  state.members = [];
  state.myRole = null;
  $("room-title").textContent = "Pick a room";
  document.title = "chatroom";
  $("messages").replaceChildren();
  $("user-list").replaceChildren();
  $("user-count").textContent = "";
  $("members").hidden = true;
  updateControls();
}

// ---------------------------------------------------------------- members and moderation

async function loadMembers() {
  const room = state.room;
  if (!room) return;
  const generation = state.generation;
  let members;
  try {
    members = await api(`/chatrooms/${room.id}/members`);
  } catch (_) {
    return;
  }
  if (generation !== state.generation) return;
  state.members = members;
  const me = members.find((m) => m.username === state.username);
  state.myRole = me ? me.role : null;
  renderMembers(room);
  refreshUsers();
}

/** May this user moderate `name` (whose role is `role`, or none)? */
function outranks(role) {
  const mine = RANK[state.myRole] || 0;
  return mine >= RANK.moderator && (mine === RANK.owner || mine > (RANK[role] || 0));
}

/** Kick, mute (or unmute), ban, and for members remove: for those below. */
function moderationButtons(name, member) {
  if (!state.room || state.room.visibility === "dm" || name === state.username) return [];
  if (!outranks(member ? member.role : null)) return [];
  const path = (kind) => `/chatrooms/${state.room.id}/${kind}/${encodeURIComponent(name)}`;
  const actions = [
    ["Kick", () => api(path("kicks"), { method: "POST" })],
    member && member.muted
      ? ["Unmute", () => api(path("mutes"), { method: "DELETE" })]
      : ["Mute", () => api(path("mutes"), { method: "PUT", body: {} })],
    ["Ban", () => api(path("bans"), { method: "PUT", body: {} })],
  ];
  if (member) actions.push(["Remove", () => api(path("members"), { method: "DELETE" })]);
  return actions.map(([label, act]) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "moderate";
    button.dataset.action = label.toLowerCase();
    button.textContent = label;
    button.setAttribute("aria-label", `${label} ${name}`);
    button.addEventListener("click", async () => {
      try {
        await act();
        loadMembers();
      } catch (err) {
        notice(`${label} ${name}: ${err.message}`);
      }
    });
    return button;
  });
}

function renderMembers(room) {
  const section = $("members");
  const dm = room.visibility === "dm";
  section.hidden = state.members.length === 0 && (room.visibility || "public") === "public";
  const list = $("member-list");
  list.replaceChildren();
  for (const m of state.members) {
    const li = document.createElement("li");
    li.dataset.username = m.username;
    const name = document.createElement("span");
    name.textContent = m.username === state.username ? `${m.username} (you)` : m.username;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = m.role;
    li.append(name, role);
    if (m.muted) {
      const note = document.createElement("span");
      note.className = "muted-note";
      note.textContent = "muted";
      li.append(note);
    }
    li.append(...moderationButtons(m.username, m));
    list.append(li);
  }
  $("add-member").hidden = dm || (RANK[state.myRole] || 0) < RANK.moderator;
  $("add-member-role").querySelector('option[value="owner"]').disabled = state.myRole !== "owner";
  $("leave-room").hidden = dm || !state.myRole;
}

async function addMember(event) {
  event.preventDefault();
  const input = $("add-member-name");
  const name = input.value.trim();
  if (!name || !state.room) return;
  try {
    await api(`/chatrooms/${state.room.id}/members/${encodeURIComponent(name)}`, {
      method: "PUT",
      body: { role: $("add-member-role").value },
    });
    input.value = "";
    loadMembers();
  } catch (err) {
    notice(`Could not add ${name}: ${err.message}`);
  }
}

async function leaveRoom() {
  if (!state.room || !state.username) return;
  try {
    await api(`/chatrooms/${state.room.id}/members/${encodeURIComponent(state.username)}`, {
      method: "DELETE",
    });
  } catch (err) {
    notice(`Could not leave: ${err.message}`);
  }
}

/** This socket was taken out of a room (kicked, banned, removed, left). */
function removedFromRoom(data) {
  const why = { kicked: "kicked out of", banned: "banned from", removed: "removed from", left: "no longer in" };
  const room = state.rooms.find((r) => r.id === data.room_id);
  const name = room ? roomLabel(room) : `room ${data.room_id}`;
  const by = data.reason === "left" ? "" : ` by ${data.by}`;
  notice(`You were ${why[data.reason] || "removed from"} ${name}${by}.`);
  if (state.room && state.room.id === data.room_id) closeRoom();
  loadRooms();
}

/** Reads the latest page, then joins with `since` = its last id: nothing
 * written in between is missed, and nothing is shown twice. */
async function openRoom(generation) {
  await loadLatest(generation);
  if (generation === state.generation) join();
}

async function loadLatest(generation) {
  const room = state.room;
  try {
    const page = await api(`/chatrooms/${room.id}/messages?limit=${PAGE}`);
    if (generation !== state.generation) return;
    state.historyLoaded = true;
    if (page.length < PAGE) state.atStart = true;
    addMessages(page, { scroll: "bottom" });
  } catch (err) {
    if (generation === state.generation) notice(`Could not load the history: ${err.message}`);
  }
  updateControls();
}

async function loadOlder() {
  const oldest = state.ids[0];
  if (state.loadingOlder || state.atStart || oldest === undefined || !state.room) return;
  const generation = state.generation;
  state.loadingOlder = true;
  $("older").textContent = "Loading older messages…";
  try {
    const page = await api(`/chatrooms/${state.room.id}/messages?before=${oldest}&limit=${PAGE}`);
    if (generation !== state.generation) return;
    if (page.length < PAGE) state.atStart = true;
    addMessages(page, { scroll: "keep" });
  } catch (err) {
    if (generation === state.generation) notice(`Could not load older messages: ${err.message}`);
  } finally {
    if (generation === state.generation) state.loadingOlder = false;
    $("older").textContent = "Load older messages";
    updateControls();
  }
}

// ---------------------------------------------------------------- messages

function lastId() {
  return state.ids.length ? state.ids[state.ids.length - 1] : null;
}

/** The index at which `id` belongs in the sorted `state.ids`. */
function insertionPoint(id) {
  let lo = 0;
  let hi = state.ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (state.ids[mid] < id) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * Shows the messages of the open room not shown yet, each at its place by
 * id (so a message is never shown twice, whichever way it came). scroll:
 * "bottom" (to the newest), "keep" (older ones above: the view stays put),
 * "follow" (to the bottom only if the reader was there).
 */
function addMessages(messages, { scroll }) {
  const log = $("log");
  const list = $("messages");
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  const heightBefore = log.scrollHeight;
  const topBefore = log.scrollTop;
  let added = 0;
  for (const m of messages) {
    if (!m || !state.room || m.room_id !== state.room.id || !Number.isInteger(m.id)) continue;
    state.seq = Math.max(state.seq, m.id);
    if (state.shown.has(m.id)) {
      replaceMessage(m);
      continue;
    }
    const el = messageElement(m);
    const at = insertionPoint(m.id);
    const next = at < state.ids.length ? state.shown.get(state.ids[at]) : null;
    list.insertBefore(el, next);
    state.ids.splice(at, 0, m.id);
    state.shown.set(m.id, el);
    added += 1;
  }
  if (added === 0) return;
  markReadSoon();
  if (scroll === "bottom" || (scroll === "follow" && nearBottom)) {
    log.scrollTop = log.scrollHeight;
  } else if (scroll === "keep") {
    log.scrollTop = topBefore + (log.scrollHeight - heightBefore);
  }
  updateControls();
}

function messageElement(m) {
  const li = document.createElement("li");
  li.className = "msg";
  if (m.sender === state.username) li.classList.add("mine");
  if (m.deleted) li.classList.add("deleted");
  li.dataset.id = String(m.id);
  li.dataset.version = String(m.version || 1);
  const meta = document.createElement("div");
  meta.className = "meta";
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = m.sender;
  const time = document.createElement("time");
  time.dateTime = m.timestamp;
  const when = new Date(m.timestamp);
  if (!Number.isNaN(when.getTime())) {
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = when.toLocaleString();
  }
  meta.append(sender, " ", time);
  if (m.edited_at && !m.deleted) {
    const edited = document.createElement("span");
    edited.className = "edited";
    edited.textContent = "(edited)";
    edited.title = new Date(m.edited_at).toLocaleString();
    meta.append(" ", edited);
  }
  const content = document.createElement("p");
  content.className = "content";
  content.textContent = m.deleted ? "This message was deleted." : m.content;
  li.append(meta, content);
  if (m.deleted) return li;
  li.append(reactionBar(m), messageActions(m));
  // Keyboard: a message's buttons are not Tab stops of their own (a long
  // history would bury the message box); arrows move between messages in
  // the log, and Tab then reaches the focused message's buttons.
  li.tabIndex = -1;
  for (const b of li.querySelectorAll("button")) b.tabIndex = -1;
  li.addEventListener("focusin", () => {
    for (const b of li.querySelectorAll("button")) b.tabIndex = 0;
  });
  li.addEventListener("focusout", (event) => {
    if (li.contains(event.relatedTarget)) return;
    for (const b of li.querySelectorAll("button")) b.tabIndex = -1;
  });
  return li;
}

/** ArrowUp/ArrowDown in the log move focus between messages. */
function onLogKey(event) {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  const items = [...document.querySelectorAll("#messages .msg")];
  if (items.length === 0) return;
  const current = items.findIndex((li) => li.contains(document.activeElement));
  const next = current < 0
    ? (event.key === "ArrowUp" ? items.length - 1 : 0)
    : Math.min(items.length - 1, Math.max(0, current + (event.key === "ArrowUp" ? -1 : 1)));
  event.preventDefault();
  items[next].focus();
}

/** The message's reactions, each a toggle of your own, then the palette. */
function reactionBar(m) {
  const bar = document.createElement("div");
  bar.className = "reactions";
  const mine = (r) => (r.users || []).includes(state.username);
  for (const r of m.reactions || []) {
    bar.append(reactionButton(m, r.emoji, `${r.emoji} ${r.count}`, mine(r), (r.users || []).join(", ")));
  }
  for (const emoji of REACTIONS) {
    if ((m.reactions || []).some((r) => r.emoji === emoji)) continue;
    const b = reactionButton(m, emoji, emoji, false, `React with ${emoji}`);
    b.classList.add("offer");
    bar.append(b);
  }
  return bar;
}

function reactionButton(m, emoji, label, pressed, title) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "reaction";
  b.dataset.emoji = emoji;
  b.textContent = label;
  b.title = title;
  b.setAttribute("aria-pressed", String(pressed));
  b.addEventListener("click", () => react(m.id, emoji, !pressed));
  return b;
}

/** Edit and delete, on your own messages. */
function messageActions(m) {
  const actions = document.createElement("div");
  actions.className = "actions";
  if (m.sender !== state.username) return actions;
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "edit link";
  edit.textContent = "Edit";
  edit.addEventListener("click", () => startEditing(m));
  const del = document.createElement("button");
  del.type = "button";
  del.className = "delete link";
  del.textContent = "Delete";
  del.addEventListener("click", () => change("delete_message", { message_id: m.id }));
  actions.append(edit, " ", del);
  return actions;
}

/** Shows `m` in place of the element for its id (an edit, a delete, a
 * reaction: whichever came last is the truth). */
function replaceMessage(m) {
  const old = state.shown.get(m.id);
  if (!old) return;
  // A late answer never undoes a newer edit or a delete.
  if (old.classList.contains("deleted") && !m.deleted) return;
  if (Number(old.dataset.version) > (m.version || 1)) return;
  const el = messageElement(m);
  old.replaceWith(el);
  state.shown.set(m.id, el);
  if (m.deleted && state.editing === m.id) stopEditing();
}

/** An edit, delete or reaction through the socket (REST when offline). */
async function change(event, fields) {
  const room = state.room;
  if (!room || !state.username) return;
  const payload = { room_id: room.id, username: state.username, ...fields };
  try {
    if (socket.connected && state.joined) {
      const ack = await socket.request(event, payload);
      if (!ack || !ack.ok) throw new Error((ack && ack.error) || "refused");
      if (ack.message) replaceMessage(ack.message);
      return;
    }
    const path = `/chatrooms/${room.id}/messages/${fields.message_id}`;
    const body = { username: state.username };
    if (event === "edit_message") {
      replaceMessage(await api(path, { method: "PATCH", body: { ...body, message: fields.message } }));
    } else if (event === "delete_message") {
      await api(path, { method: "DELETE", body });
    } else {
      const method = event === "add_reaction" ? "PUT" : "DELETE";
      replaceMessage(await api(`${path}/reactions/${encodeURIComponent(fields.emoji)}`, { method, body }));
    }
  } catch (err) {
    notice(`Could not change the message: ${err.message}`);
  }
}

function react(id, emoji, add) {
  change(add ? "add_reaction" : "remove_reaction", { message_id: id, emoji });
}

function startEditing(m) {
  state.editing = m.id;
  const input = $("composer-input");
  input.value = m.content;
  $("editing").hidden = false;
  $("send").textContent = "Save";
  input.focus();
}

function stopEditing() {
  if (state.editing === null) return;
  state.editing = null;
  $("editing").hidden = true;
  $("send").textContent = "Send";
  $("composer-input").value = "";
}

// ---------------------------------------------------------------- read state

let readTimer = null;
/** Marks the open room read up to its newest message, once the burst of
 * arrivals settles, when the page is visible. */
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 300);
}

/** Marks the open room read now (also as it is left: what was shown was
 * seen). Reads the room and the newest id before any await. */
async function markRead() {
  clearTimeout(readTimer);
  const room = state.room;
  const newest = lastId();
  if (!room || !state.username || newest === null || newest <= state.readUpTo) return;
  if (document.visibilityState === "hidden") return;
  state.readUpTo = newest;
  const body = { room_id: room.id, username: state.username, message_id: newest };
  try {
    if (socket.connected && state.joined) await socket.request("mark_read", body);
    else await api(`/chatrooms/${room.id}/read`, { method: "PUT", body });
  } catch (_) {
    state.readUpTo = 0;
  }
}

async function sendMessage(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value;
  if (!text.trim() || !state.room || !state.username) return;
  const room = state.room;
  stopTyping();
  if (state.editing !== null) {
    const id = state.editing;
    stopEditing();
    await change("edit_message", { message_id: id, message: text });
    updateControls();
    return;
  }
  $("send").disabled = true;
  // One key per text: sent again after a failure (no answer, a dropped
  // connection), it cannot be stored twice (docs/protocol.md §3.5).
  if (!state.sending || state.sending.text !== text || state.sending.room !== room.id) {
    state.sending = { text, room: room.id, key: clientId() };
  }
  const client_id = state.sending.key;
  try {
    let message;
    if (socket.connected && state.joined) {
      const ack = await socket.request("send_message", { room_id: room.id, message: text, client_id });
      if (!ack || !ack.ok) throw new Error((ack && ack.error) || "not sent");
      message = ack.message;
    } else {
      // No live connection: REST stores it just the same, and the room's
      // sockets get it as `new_message`.
      message = await api(`/chatrooms/${room.id}/messages`, {
        method: "POST",
        body: { sender: state.username, message: text, client_id },
      });
    }
    state.sending = null;
    if (input.value === text) input.value = "";
    if (message) addMessages([message], { scroll: "bottom" });
  } catch (err) {
    notice(`Not sent: ${err.message}`);
  } finally {
    updateControls();
    input.focus();
  }
}

/** A fresh `client_id`: 128 random bits (getRandomValues works on plain
 * http too, where randomUUID does not). */
function clientId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- joining and presence

async function join() {
  const room = state.room;
  if (!room || !state.username || !socket.connected || state.joined) return;
  const generation = state.generation;
  const payload = { room_id: room.id, username: state.username };
  // Every change after the newest seen (a message id is a change too);
  // with an empty room, after 0. Without history (it failed to load) no
  // `since`: live changes only, and the history is read again once joined.
  // Never before what retention keeps (`keptAfter`, from a
  // `resync_required`).
  const since = lastId();
  if (since !== null) payload.since = Math.max(since, state.seq, state.keptAfter);
  else if (state.historyLoaded) payload.since = Math.max(state.seq, state.keptAfter);
  state.joined = true;
  let ack;
  try {
    ack = await socket.request("join_room", payload);
  } catch (_) {
    // The connection dropped meanwhile: the next connect joins again.
    if (generation === state.generation) state.joined = false;
    return;
  }
  if (generation !== state.generation) return;
  if (!ack || !ack.ok) {
    state.joined = false;
    if (ack && ack.code === "resync_required") {
      resync(ack.kept_after);
      return;
    }
    notice(`Could not join: ${(ack && ack.error) || "no answer"}`);
    return;
  }
  if (!state.historyLoaded) loadLatest(generation);
  refreshUsers();
  updateControls();
}

/** Retention pruned past what this view holds (docs/protocol.md §4.6):
 * it is read again from the newest page, then joined from there. */
function resync(keptAfter) {
  state.generation += 1;
  state.keptAfter = Math.max(state.keptAfter, Number(keptAfter) || 0);
  state.seq = 0;
  state.historyLoaded = false;
  state.shown.clear();
  state.ids = [];
  state.atStart = false;
  state.loadingOlder = false;
  $("messages").replaceChildren();
  notice("Older history is no longer kept here: showing the newest messages.");
  openRoom(state.generation);
}

let usersTimer = null;
function refreshUsersSoon() {
  clearTimeout(usersTimer);
  usersTimer = setTimeout(refreshUsers, 150);
}

async function refreshUsers() {
  const room = state.room;
  if (!room) return;
  const generation = state.generation;
  let users;
  try {
    users = await api(`/chatrooms/${room.id}/users`);
  } catch (_) {
    return;
  }
  if (generation !== state.generation) return;
  const list = $("user-list");
  list.replaceChildren();
  for (const name of users.users || []) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name;
    li.append(label);
    if (name === state.username) li.classList.add("me");
    // Anyone here can be moderated by those who rank above them; members
    // have their buttons in the member list.
    if (!state.members.some((m) => m.username === name)) li.append(...moderationButtons(name, null));
    list.append(li);
  }
  $("user-count").textContent = `(${users.user_count})`;
}

// ---------------------------------------------------------------- controls

function updateControls() {
  const ready = Boolean(state.room && state.username);
  const input = $("composer-input");
  input.disabled = !ready;
  input.placeholder = !state.username
    ? "Pick a name first"
    : !state.room ? "Pick a room first" : `Message ${state.room.name}`;
  $("send").disabled = !ready;
  $("older").hidden = state.atStart || state.ids.length === 0;
  $("history-start").hidden = !(state.atStart && state.historyLoaded);
}

function setName(event) {
  event.preventDefault();
  const name = $("username").value.trim();
  if (!name || name.length > 64) {
    notice("A name is 1 to 64 characters.");
    return;
  }
  const changed = name !== state.username;
  state.username = name;
  saved.set("chatroom.username", name);
  if (changed && state.room) {
    // Your messages (and so their Edit and Delete) depend on the name.
    const generation = state.generation;
    state.shown.clear();
    state.ids = [];
    $("messages").replaceChildren();
    loadLatest(generation);
  }
  loadUnread();
  updateControls();
  if (changed && state.room && state.joined) {
    // Rejoin under the new name (presence lists the joined name).
    socket.emit("leave_room", { room_id: state.room.id });
    state.joined = false;
  }
  join();
  if (state.room) $("composer-input").focus();
}

// ---------------------------------------------------------------- typing

/** A refresh goes out at most this often while typing (the server's
 * throttle is 2 s and it expires a typist after 5 s without one). */
const TYPING_REFRESH_MS = 1500;
/** Others are forgotten after this long without news (the server says
 * when they stop; this covers a relayed stop that got lost). */
const TYPIST_TIMEOUT_MS = 6000;

function onComposerInput() {
  if (!state.room || !state.joined || !socket.connected) return;
  if (!$("composer-input").value) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (now - state.typingSince < TYPING_REFRESH_MS) return;
  state.typingSince = now;
  socket.emit("typing", { room_id: state.room.id, typing: true });
}

function stopTyping() {
  if (!state.typingSince) return;
  state.typingSince = 0;
  if (state.room && state.joined && socket.connected) {
    socket.emit("typing", { room_id: state.room.id, typing: false });
  }
}

function clearTypists() {
  for (const timer of state.typists.values()) clearTimeout(timer);
  state.typists.clear();
  renderTypists();
}

function someoneTyping(data) {
  const name = data.username;
  if (!name || name === state.username) return;
  clearTimeout(state.typists.get(name));
  if (data.typing) {
    state.typists.set(name, setTimeout(() => {
      state.typists.delete(name);
      renderTypists();
    }, TYPIST_TIMEOUT_MS));
  } else {
    state.typists.delete(name);
  }
  renderTypists();
}

function renderTypists() {
  const names = [...state.typists.keys()];
  $("typing").textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : `${names.length} people are typing…`;
}

// ---------------------------------------------------------------- the socket

/** The change log's events beyond `new_message`. */
const CHANGES = ["message_edited", "message_deleted", "reaction_added", "reaction_removed"];

const socket = new SocketIoClient({
  token: () => state.token,
  onState(kind, detail) {
    if (kind !== "connected") {
      state.joined = false;
      state.typingSince = 0;
      clearTypists();
    }
    showStatus(kind, detail);
  },
  onConnect() {
    state.joined = false;
    loadRooms();
    join();
  },
  onEvent(name, data) {
    if (!data || typeof data !== "object") return;
    const here = Boolean(state.room && data.room_id === state.room.id);
    if (name === "new_message") {
      if (here) addMessages([data], { scroll: "follow" });
    } else if (CHANGES.includes(name)) {
      if (here && data.message) {
        state.seq = Math.max(state.seq, data.seq || 0);
        replaceMessage(data.message);
      }
    } else if (name === "typing") {
      if (here) someoneTyping(data);
    } else if (name === "user_joined" || name === "user_left") {
      if (here) refreshUsersSoon();
    } else if (name === "membership") {
      if (here) {
        state.seq = Math.max(state.seq, data.seq || 0);
        loadMembers();
      }
      if (data.username === state.username) loadRooms();
    } else if (name === "removed_from_room") {
      removedFromRoom(data);
    } else if (name === "error") {
      notice(`Server: ${data.error || "error"}`);
    }
  },
});

// ---------------------------------------------------------------- start

function start() {
  $("username").value = state.username;
  $("token").value = state.token;
  $("identity").addEventListener("submit", setName);
  $("token").addEventListener("change", () => {
    state.token = $("token").value.trim();
    saved.set("chatroom.token", state.token);
    socket.reconnectNow();
  });
  $("new-room").addEventListener("submit", createRoom);
  $("new-dm").addEventListener("submit", openDm);
  $("add-member").addEventListener("submit", addMember);
  $("leave-room").addEventListener("click", leaveRoom);
  $("refresh-rooms").addEventListener("click", loadRooms);
  $("composer").addEventListener("submit", sendMessage);
  $("composer-input").addEventListener("input", onComposerInput);
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.editing !== null) {
      event.preventDefault();
      stopEditing();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("older").addEventListener("click", loadOlder);
  $("log").addEventListener("keydown", onLogKey);
  $("log").addEventListener("scroll", () => {
    if ($("log").scrollTop < OLDER_THRESHOLD_PX) loadOlder();
  }, { passive: true });
  window.addEventListener("online", () => { if (!socket.connected) socket.reconnectNow(); });
  document.addEventListener("visibilitychange", markReadSoon);
  // Other rooms' unread counts: this page follows only the open room live.
  setInterval(loadUnread, 10000);

  updateControls();
  socket.open();
  const wanted = Number((window.location.hash.match(/room=(\d+)/) || [])[1]
    || saved.get("chatroom.room"));
  loadRooms().then(() => {
    const room = state.rooms.find((r) => r.id === wanted);
    if (room && !state.room) selectRoom(room);
  });
  if (!state.username) $("username").focus();
}

start();
