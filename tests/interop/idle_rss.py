"""The resident memory one idle Socket.IO connection costs a fresh sidecar
(issue 9), measured in seconds rather than the realtime bench's minutes:
start the sidecar binary given (file mode on a new SQLite file), connect N
python-socketio clients one by one (polling, then upgraded to websocket,
as the bench's clients do), wait, and print VmRSS after minus before,
divided by N. Prints figures, asserts nothing.

Usage: python idle_rss.py PATH/TO/sidecar-process [N]   (default N: 1000)
Needs requirements.txt installed. The "before" figure is taken after one
connection came and went, so the code its first use pages in is not
counted against every connection."""

import asyncio
import re
import subprocess
import sys
import tempfile

import socketio


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


async def connect(url):
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, wait_timeout=10)
    for _ in range(200):
        if client.transport() == "websocket":
            break
        await asyncio.sleep(0.01)
    return client


async def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as state:
        args = [binary, "--db", f"{state}/db.sqlite", "--listen", "127.0.0.1:0", "--log", "warn"]
        sidecar = subprocess.Popen(args, stdout=subprocess.PIPE)
        try:
            line = ""
            while "listening on" not in line:
                line = sidecar.stdout.readline().decode()
                if not line:
                    sys.exit("the sidecar exited before listening")
            url = re.search(r"listening on (http://\S+)", line).group(1)
            warm = await connect(url)
            await warm.disconnect()
            await asyncio.sleep(1)
            before = rss_kib(sidecar.pid)
            clients = [await connect(url) for _ in range(n)]
            await asyncio.sleep(2)
            after = rss_kib(sidecar.pid)
            on_ws = sum(c.transport() == "websocket" for c in clients)
            print(
                f"RSS per idle connection ({n} connected, {on_ws} on websocket, no room): "
                f"{(after - before) / n:.1f} KiB (VmRSS {before} KiB before, {after} KiB after)"
            )
            for c in clients:
                await c.disconnect()
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=30)


asyncio.run(main())
