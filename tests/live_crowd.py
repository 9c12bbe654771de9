"""A crowd of Socket.IO clients in a process of its own, for tests/test_live_clients.py.

    python -m tests.live_crowd URL TOKEN COUNT EVENT

Connects COUNT python-socketio asyncio clients to URL with the login token, as the README's
Python snippet connects (over the WebSocket transport, one event loop for them all, so a
thousand fit in one process of a small machine), and writes one JSON line when every attempt
is over: `{"connected": n, "failed": k, "retries": r, "seconds": s, "errors": [...]}` (a
client that fails tries again, twice at most, as Socket.IO clients reconnect). Then, for each
EVENT carrying a `message` it has not heard before, one line once every connected client heard
it (or 10 s after the first did): `{"message": text, "heard": [unix time at each client]}`.
When its standard input closes, it disconnects every client and ends.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import defaultdict

import aiohttp
import socketio

HEARD_WAIT_SECONDS = 10
CONNECTING_AT_ONCE = 50
CONNECT_TRIES = 3


def _write(line: dict) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Crowd:
    def __init__(self, url: str, token: str, count: int, event: str) -> None:
        self.url, self.token, self.count, self.event = url, token, count, event
        self.clients: list[socketio.AsyncClient] = []
        self.heard: dict[str, list[float]] = defaultdict(list)
        self.reported: set[str] = set()
        self.retries = 0

    async def run(self) -> None:
        # One HTTP session for the crowd, without aiohttp's default cap of 100 connections.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            started = time.monotonic()
            gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
            results = await asyncio.gather(*(self._connect(http, gate) for _ in range(self.count)))
            errors = [error for error in results if error]
            _write(
                {
                    "connected": len(self.clients),
                    "failed": len(errors),
                    "retries": self.retries,
                    "seconds": round(time.monotonic() - started, 3),
                    "errors": sorted(set(errors))[:5],
                }
            )
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            await asyncio.gather(*(client.disconnect() for client in self.clients), return_exceptions=True)

    async def _connect(self, http: aiohttp.ClientSession, gate: asyncio.Semaphore) -> str | None:
        """Connect one client, trying again after a failure as Socket.IO clients do (a busy
        machine may take longer than a client waits); the last error if every try failed."""
        error = None
        for attempt in range(CONNECT_TRIES):
            if attempt:
                self.retries += 1
                await asyncio.sleep(attempt)
            client = socketio.AsyncClient(http_session=http, reconnection=False, request_timeout=30)
            client.on(self.event, self._on_event)
            async with gate:
                try:
                    await client.connect(
                        self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=30
                    )
                except Exception as exc:  # counted and reported: the test says what went wrong
                    error = f"{type(exc).__name__}: {exc}"
                    continue
            self.clients.append(client)
            return None
        return error

    async def _on_event(self, data: dict) -> None:
        at = time.time()
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, str) or message in self.reported:
            return
        self.heard[message].append(at)
        if len(self.heard[message]) == 1:
            asyncio.get_running_loop().create_task(self._report(message))

    async def _report(self, message: str) -> None:
        deadline = time.monotonic() + HEARD_WAIT_SECONDS
        while len(self.heard[message]) < len(self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.reported.add(message)
        _write({"message": message, "heard": self.heard.pop(message)})


def main() -> None:
    url, token, count, event = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256  # a socket per client, and some to spare
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    asyncio.run(Crowd(url, token, count, event).run())


if __name__ == "__main__":
    main()
