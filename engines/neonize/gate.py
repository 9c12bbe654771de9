"""The process-wide gate around neonize's Go side.

neonize keeps its live clients in Go maps that nothing locks. Starting a client (the first
moments of `connect()`) and `stop()` write those maps; every other call reads them as it
begins. A write racing any other access ends the process (`fatal error: concurrent map
writes`), which Python cannot catch. So writers hold the gate exclusively, readers share it,
and a waiting writer goes first so that a stream of sends cannot starve a stop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_shared(self) -> None:
        with self._condition:
            while self._writer or self._writers_waiting:
                self._condition.wait()
            self._readers += 1

    def release_shared(self) -> None:
        with self._condition:
            self._readers -= 1
            if not self._readers:
                self._condition.notify_all()

    def acquire_exclusive(self) -> None:
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True

    def release_exclusive(self) -> None:
        with self._condition:
            self._writer = False
            self._condition.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.acquire_exclusive()
        try:
            yield
        finally:
            self.release_exclusive()


# One for the whole process: the Go maps it guards are global, whatever engine holds them.
GATE = Gate()


# Go looks the client up in its maps as a call begins; a call then may block for long
# (a send waits up to 60 s for a dial). Holding the gate for all of it would stall every
# other session's start and stop, so a call holds it only this long.
CALL_HOLD_SECONDS = 1.0


class GatedGo:
    """neonize's Go library, with every call passing the gate.

    Installed as a client's Go handle, so neonize's own helpers (an upload inside an image
    send, say) pass it too. `Stop` holds the gate exclusively until it returns (at once);
    `Neonize`, the call inside `connect()` that lasts as long as the session, holds it
    exclusively for `connect_hold` seconds, the time Go takes to register the client.
    """

    def __init__(self, go, gate: Gate = GATE, *, connect_hold: float = 1.0) -> None:
        self._go = go
        self._gate = gate
        self._connect_hold = connect_hold

    def __getattr__(self, name: str):
        function = getattr(self._go, name)
        if name in ("Stop", "StopAll"):
            acquire, release, hold = self._gate.acquire_exclusive, self._gate.release_exclusive, None
        elif name == "Neonize":
            acquire, release, hold = self._gate.acquire_exclusive, self._gate.release_exclusive, self._connect_hold
        else:
            acquire, release, hold = self._gate.acquire_shared, self._gate.release_shared, CALL_HOLD_SECONDS

        def call(*args):
            acquire()
            once = threading.Lock()

            def release_once() -> None:
                if once.acquire(blocking=False):
                    release()

            timer = None
            if hold is not None:
                timer = threading.Timer(hold, release_once)
                timer.daemon = True
                timer.start()
            try:
                return function(*args)
            finally:
                if timer is not None:
                    timer.cancel()
                release_once()

        return call
