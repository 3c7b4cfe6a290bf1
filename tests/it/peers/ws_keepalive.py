"""An independent WebSocket peer for Cistern's `/ws`: the Python `websockets` library.

Connects, authenticates, subscribes to the fleet, sends a WebSocket Ping and waits for the
Pong carrying the same payload, then stays connected through several rounds of the library's
own keep-alive (a ping every 0.3 s, dropped when a pong takes over 2 s: the defaults are 20 s
and 20 s, which is why an unanswered ping killed every connection after about 40 s).

Run by tests/it/ws_protocol.rs: `python3 ws_keepalive.py ws://127.0.0.1:PORT/ws TOKEN`.
Prints one JSON line on success; any failure is a traceback and a non-zero exit.
"""

import asyncio
import json
import sys

try:
    from websockets.asyncio.client import connect
    from websockets.protocol import State
except ImportError as e:  # the peer is part of the test: its absence is a failure
    sys.exit(f"ws_keepalive.py needs the `websockets` package (pip install websockets): {e}")

PAYLOAD = b"cistern-peer-ping-17"
KEEPALIVE_ROUNDS_S = 2.0


async def drain(ws, frames):
    """Reads every server message (a full queue would stop the library reading pongs)."""
    async for text in ws:
        frames.append(json.loads(text))


async def main(url, token):
    async with connect(url, open_timeout=10, ping_interval=0.3, ping_timeout=2) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        ok = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ok["type"] == "auth_ok", ok
        await ws.send(json.dumps({"type": "subscribe", "id": "fleet", "topic": "fleet",
                                  "filter": {"rooms": True}}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame.get("id") == "fleet":
                break
        assert frame["type"] == "snapshot", frame
        frames = []
        reader = asyncio.create_task(drain(ws, frames))
        # The pong waiter resolves only on a Pong whose payload is this ping's.
        pong = await ws.ping(PAYLOAD)
        latency = await asyncio.wait_for(pong, 10)
        await asyncio.sleep(KEEPALIVE_ROUNDS_S)
        assert ws.state is State.OPEN, f"dropped during keep-alive: {ws.close_code} {ws.close_reason}"
        await ws.send(json.dumps({"type": "ping", "id": "still-here"}))
        for _ in range(100):
            if any(f.get("type") == "pong" and f.get("id") == "still-here" for f in frames):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no protocol pong after the keep-alive rounds: {frames[-5:]}")
        reader.cancel()
        print(json.dumps({"user": ok["user"], "snapshot_seq": frame["seq"],
                          "pong_latency_s": latency, "frames_after_snapshot": len(frames)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: ws_keepalive.py WS_URL TOKEN")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
