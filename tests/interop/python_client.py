"""docs/protocol.md §3 with the official python-socketio 5.x asyncio client (and aiohttp
for REST), against a running chatroom at CHATROOM_URL (default
http://127.0.0.1:3000). The original project's test drove python-socketio
the same way: join_room, send_message, user_count before and after a
disconnect. Exits non-zero on the first failed check."""

import asyncio
import json
import os
import sys
import uuid

import aiohttp
import socketio

URL = os.environ.get("CHATROOM_URL", "http://127.0.0.1:3000")
# With auth on, the run script passes a token per user (`chatroom token`).
TOKENS = json.loads(os.environ["CHATROOM_TOKENS"]) if os.environ.get("CHATROOM_TOKENS") else None


def as_user(user):
    """REST headers speaking as `user` (none with auth off)."""
    return {"Authorization": f"Bearer {TOKENS[user]}"} if TOKENS and user else {}
PATIENCE = 10
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


class Client:
    """An AsyncClient that queues every event it receives."""

    def __init__(self, user=None):
        self.user = user
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queues = {}
        for event in ("user_joined", "user_left", "new_message", "error", "connect_error"):
            self.sio.on(event, self._handler(event))

    def _handler(self, event):
        async def handle(data):
            await self._queue(event).put(data)

        return handle

    def _queue(self, event):
        return self.queues.setdefault(event, asyncio.Queue())

    async def connect(self):
        # HTTP long-polling here, websocket in the JS client: both transports.
        auth = {"token": TOKENS[self.user]} if TOKENS and self.user else None
        await self.sio.connect(URL, transports=["polling"], auth=auth)

    async def next(self, event):
        return await asyncio.wait_for(self._queue(event).get(), PATIENCE)

    async def call(self, event, data):
        return await self.sio.call(event, data, timeout=PATIENCE)


class Recorder:
    """An AsyncClient that records every event it receives, in arrival order."""

    def __init__(self, user):
        self.user = user
        self.sio = socketio.AsyncClient(reconnection=False)
        self.seen = []
        self.arrived = asyncio.Event()

        @self.sio.on("*")
        async def record(event, data=None):
            self.seen.append((event, data))
            self.arrived.set()

    async def connect(self):
        auth = {"token": TOKENS[self.user]} if TOKENS else None
        await self.sio.connect(URL, transports=["polling"], auth=auth)

    async def call(self, event, data):
        return await self.sio.call(event, data, timeout=PATIENCE)

    async def take(self, names, n):
        """The next `n` unseen events named any of `names`, in arrival order."""
        out = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while len(out) < n:
            i = next((i for i, (name, _) in enumerate(self.seen) if name in names), None)
            if i is not None:
                out.append(self.seen.pop(i))
                continue
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - loop.time()))
        return out

    async def next(self, event):
        return (await self.take((event,), 1))[0][1]

    def has(self, event):
        return any(name == event for name, _ in self.seen)


CHANGES = ("new_message", "message_edited", "message_deleted", "reaction_added", "reaction_removed")


async def conversations(http):
    """docs/protocol.md §3.3-3.8: edit, delete, reactions, typing, read state
    and a `since` catch-up that replays them, over sockets and REST."""

    async def rest(method, path, body, user):
        async with http.request(method, f"{URL}{path}", json=body, headers=as_user(user)) as r:
            return r.status, (None if r.status == 204 else await r.json())

    status, created = await rest("POST", "/chatrooms", {"name": f"py-talk-{uuid.uuid4().hex[:8]}"}, "alice")
    check(status == 201, f"create the conversation room: {status}")
    room = created["id"]
    alice, bob = Recorder("alice"), Recorder("bob")
    for c in (alice, bob):
        await c.connect()
        ack = await c.call("join_room", {"room_id": room, "username": c.user})
        check(ack.get("ok") is True, f"{c.user} joins: {ack}")
    sent = await alice.call("send_message", {"room_id": room, "message": "frist"})
    m1 = sent["message"]["id"]
    for c in (alice, bob):
        check((await c.next("new_message"))["id"] == m1, "the message reaches both")

    # Typing reaches the others, not the typist, and is never a change.
    ack = await bob.call("typing", {"room_id": room})
    check(ack == {"ok": True, "room_id": room, "typing": True}, f"typing ack: {ack}")
    check(await alice.next("typing") == {"room_id": room, "username": "bob", "typing": True}, "alice sees bob typing")
    await bob.call("typing", {"room_id": room, "typing": False})
    check(await alice.next("typing") == {"room_id": room, "username": "bob", "typing": False}, "bob stopped")
    check(not bob.has("typing"), "the typist is not told of his own typing")

    # Only the sender edits; every member sees the edit.
    ack = await alice.call("edit_message", {"room_id": room, "message_id": m1, "message": "first"})
    check(ack.get("ok") is True and ack["message"]["version"] == 2, f"edit ack: {ack}")
    for c in (alice, bob):
        e = await c.next("message_edited")
        check(e["message_id"] == m1 and e["message"]["content"] == "first" and "edited_at" in e["message"],
              f"message_edited: {e}")
    ack = await bob.call("edit_message", {"room_id": room, "message_id": m1, "message": "mine now"})
    check(ack.get("ok") is False and ack["code"] == "not_sender", f"bob may not edit: {ack}")
    check((await bob.next("error"))["code"] == "not_sender", "not_sender error event")
    status, body = await rest("DELETE", f"/chatrooms/{room}/messages/{m1}", {"sender": "bob"}, "bob")
    check(status == 403 and body["code"] == "not_sender", f"REST delete by another: {status}")

    # Reactions, over a socket and over REST, aggregated per emoji.
    ack = await bob.call("add_reaction", {"room_id": room, "message_id": m1, "emoji": ":tada:"})
    check(ack.get("ok") is True, f"add_reaction ack: {ack}")
    for c in (alice, bob):
        r = await c.next("reaction_added")
        check(r["message"]["reactions"] == [{"emoji": ":tada:", "count": 1, "users": ["bob"]}], f"reaction_added: {r}")
    status, body = await rest("PUT", f"/chatrooms/{room}/messages/{m1}/reactions/:tada:", {"username": "carol"}, "carol")
    check(status == 200 and body["reactions"][0]["count"] == 2, f"REST reaction: {status} {body}")
    for c in (alice, bob):
        check((await c.next("reaction_added"))["username"] == "carol", "REST reaction reaches both")
    ack = await bob.call("remove_reaction", {"room_id": room, "message_id": m1, "emoji": ":tada:"})
    check(ack.get("ok") is True and ack["message"]["reactions"][0]["users"] == ["carol"], f"remove: {ack}")
    for c in (alice, bob):
        r = await c.next("reaction_removed")
        check(r["username"] == "bob" and r["message"]["reactions"][0]["count"] == 1, f"reaction_removed: {r}")
    ack = await bob.call("add_reaction", {"room_id": room, "message_id": m1, "emoji": "ab"})
    check(ack.get("ok") is False and ack["code"] == "invalid_emoji", f"a bad emoji: {ack}")
    check((await bob.next("error"))["code"] == "invalid_emoji", "invalid_emoji error event")

    # Read state: a receipt when asked for; unread counts skip one's own and the deleted.
    ack = await bob.call("mark_read", {"room_id": room, "message_id": m1, "receipt": True})
    check(ack.get("ok") is True and ack["last_read_id"] == m1 and ack["unread"] == 0, f"mark_read: {ack}")
    check(await alice.next("read") == {"room_id": room, "username": "bob", "message_id": m1}, "read receipt")
    m2 = (await alice.call("send_message", {"room_id": room, "message": "second"}))["message"]["id"]
    for c in (alice, bob):
        check((await c.next("new_message"))["id"] == m2, "the second message reaches both")

    async def unread():
        status, body = await rest("GET", "/users/bob/unread", None, "bob")
        check(status == 200, f"unread: {status}")
        return next(r["unread"] for r in body["rooms"] if r["room_id"] == room)

    check(await unread() == 1, "bob has one unread")

    # Delete: a tombstone everyone sees; reacting to it is a conflict.
    ack = await alice.call("delete_message", {"room_id": room, "message_id": m2})
    check(ack == {"ok": True, "room_id": room, "message_id": m2, "deleted": True}, f"delete ack: {ack}")
    for c in (alice, bob):
        d = await c.next("message_deleted")
        check(d["message"]["deleted"] is True and d["message"]["content"] == "", f"message_deleted: {d}")
    check(await unread() == 0, "a deleted message is not unread")
    status, body = await rest("PUT", f"/chatrooms/{room}/messages/{m2}/reactions/:tada:", {"username": "carol"}, "carol")
    check(status == 409 and body["code"] == "message_deleted", f"reacting to a tombstone: {status}")

    # Away and back: `since` replays every change once, in order, as it is now.
    late = Recorder("late")
    await late.connect()
    ack = await late.call("join_room", {"room_id": room, "username": "late", "since": m1 - 1})
    check(ack.get("ok") is True and ack["replayed"] == 7, f"catch-up ack: {ack}")
    replay = await late.take(CHANGES, 7)
    names = [name for name, _ in replay]
    check(names == ["new_message", "message_edited", "reaction_added", "reaction_added", "reaction_removed",
                    "new_message", "message_deleted"], f"replayed in order: {names}")
    seqs = [d["id"] if name == "new_message" else d["seq"] for name, d in replay]
    check(seqs == sorted(set(seqs)), f"replayed by seq: {seqs}")
    check(replay[0][1]["content"] == "first" and replay[5][1]["content"] == "", "replayed as it is now")
    for c in (alice, bob, late):
        await c.sio.disconnect()


async def main():
    async with aiohttp.ClientSession() as http:
        if TOKENS:
            # Auth on: no token, no connection and no write.
            anonymous = Client()
            try:
                await anonymous.connect()
                check(False, "connected without a token")
            except socketio.exceptions.ConnectionError:
                refused = await anonymous.next("connect_error")
                check(refused == {"message": "unauthorized"}, f"connect_error: {refused}")
            async with http.post(f"{URL}/chatrooms", json={"name": "py-anon"}) as r:
                check(r.status == 401 and (await r.json())["code"] == "unauthorized", "REST without a token")
        name = f"py-{uuid.uuid4().hex[:8]}"
        async with http.post(f"{URL}/chatrooms", json={"name": name}, headers=as_user("alice")) as r:
            check(r.status == 201, f"create room: {r.status}")
            room = (await r.json())["id"]

        async def users():
            async with http.get(f"{URL}/chatrooms/{room}/users") as r:
                return await r.json()

        alice, bob = Client("alice"), Client("bob")
        await alice.connect()
        await bob.connect()
        ack = await alice.call("join_room", {"room_id": room, "username": "alice"})
        check(ack.get("ok") is True, f"join ack: {ack}")
        check((await alice.next("user_joined"))["username"] == "alice", "alice joined")
        await bob.call("join_room", {"room_id": room, "username": "bob"})
        check((await alice.next("user_joined"))["username"] == "bob", "alice sees bob")
        check((await bob.next("user_joined"))["username"] == "bob", "bob sees himself")
        check((await users())["user_count"] == 2, "two users")

        ack = await alice.call("send_message", {"room_id": room, "sender": "alice", "message": "Hi"})
        check(ack.get("ok") is True and ack["message"]["content"] == "Hi", f"send ack: {ack}")
        for c in (alice, bob):
            m = await c.next("new_message")
            check(m["content"] == "Hi" and m["sender"] == "alice", f"socket message: {m}")

        # At-least-once: a send repeated with its client_id is one message,
        # delivered once (the REST message below is the fence).
        keyed = {"room_id": room, "sender": "alice", "message": "once", "client_id": "py-once-1"}
        first, again = await alice.call("send_message", keyed), await alice.call("send_message", keyed)
        check(first.get("ok") is True and again.get("ok") is True
              and first["message"]["id"] == again["message"]["id"], f"repeat: {first} {again}")
        for c in (alice, bob):
            m = await c.next("new_message")
            check(m["id"] == first["message"]["id"], f"keyed message: {m}")

        if TOKENS:
            async with http.post(f"{URL}/chatrooms/{room}/messages", headers=as_user("carol"),
                                 json={"sender": "alice", "message": "spoof"}) as r:
                check(r.status == 403 and (await r.json())["code"] == "sender_mismatch", "REST spoofing")
        async with http.post(f"{URL}/chatrooms/{room}/messages", headers=as_user("carol"),
                             json={"sender": "carol", "message": "via REST"}) as r:
            check(r.status == 201, "REST post")
            posted = await r.json()
        for c in (alice, bob):
            check(await c.next("new_message") == posted, "REST message reaches sockets")

        await bob.sio.disconnect()
        left = await alice.next("user_left")
        check(left["username"] == "bob" and left["room_id"] == room, f"user_left: {left}")
        check((await users()) == {"room_id": room, "user_count": 1, "users": ["alice"]}, "count drops")

        ack = await alice.call("join_room", {"room_id": 999999, "username": "alice"})
        check(ack.get("ok") is False and ack["code"] == "room_not_found", f"missing room ack: {ack}")
        err = await alice.next("error")
        check(err == {"error": "Chatroom not found", "code": "room_not_found"}, f"error: {err}")

        late = Client("late")
        await late.connect()
        since = posted["id"] - 1
        await late.call("join_room", {"room_id": room, "username": "late", "since": since - 0})
        got = await late.next("new_message")
        check(got == posted, f"catch-up replays: {got}")
        await alice.sio.disconnect()
        await late.sio.disconnect()
        await conversations(http)
    print(f"python-socketio interop: {checks} passed, 0 failed")


asyncio.run(main())
