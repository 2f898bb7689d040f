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
    print(f"python-socketio interop: {checks} passed, 0 failed")


asyncio.run(main())
