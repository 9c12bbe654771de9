"""Per-session send lines inside the engine host.

Each session with messages to send gets a thread that sends them one at a time, in
order, each no earlier than its `send_after` and at least its `min_gap_ms` after the
session's previous send. Slow sessions never hold up others. The lines live in memory;
the database is the durable copy (`SessionSenders.reload`), so an engine host that dies
and restarts picks every queued message up again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
IDLE_SECONDS = 5.0

# send(message_id) -> seconds to wait before trying again, or None when it is settled.
SendFunction = Callable[[str], float | None]


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    message_id: str = field(compare=False)
    gap: float = field(compare=False)


class _Line:
    def __init__(self, session_id: str, send: SendFunction, stopping: threading.Event, on_exit) -> None:
        self.session_id = session_id
        self.send = send
        self.stopping = stopping
        self.on_exit = on_exit
        self.items: list[_Item] = []
        self.queued: set[str] = set()
        self.last_sent = 0.0
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"sender:{session_id}", daemon=True)

    def push(self, item: _Item) -> None:
        with self.condition:
            if item.message_id in self.queued:
                return
            self.queued.add(item.message_id)
            heapq.heappush(self.items, item)
            self.condition.notify()

    def depth(self) -> int:
        with self.condition:
            return len(self.items)

    def _next(self) -> _Item | None:
        """Wait for the head of the line to be due; None when idle long enough to retire."""
        idle_since = time.monotonic()
        with self.condition:
            while not self.stopping.is_set():
                if self.items:
                    head = self.items[0]
                    ready_at = max(head.due, self.last_sent + head.gap)
                    wait = ready_at - time.time()
                    if wait <= 0:
                        self.queued.discard(head.message_id)
                        return heapq.heappop(self.items)
                    self.condition.wait(min(wait, 1.0))
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= IDLE_SECONDS:
                    return None
                else:
                    self.condition.wait(0.5)
        return None

    def _run(self) -> None:
        try:
            while (item := self._next()) is not None:
                try:
                    retry_in = self.send(item.message_id)
                except Exception:  # a broken send must not end the session's line
                    log.exception("send of message %s failed unexpectedly", item.message_id)
                    retry_in = 5.0
                if retry_in is None:
                    self.last_sent = time.time()
                else:
                    self.push(_Item(time.time() + retry_in, item.seq, item.message_id, item.gap))
        finally:
            self.on_exit(self)


class SessionSenders:
    def __init__(self, send: SendFunction) -> None:
        self.send = send
        self.lines: dict[str, _Line] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.seq = itertools.count()

    def push(self, session_id: str, message_id: str, *, due: float, gap_seconds: float) -> None:
        item = _Item(due, next(self.seq), message_id, gap_seconds)
        with self.lock:
            line = self.lines.get(session_id)
            if line is None:
                line = self.lines[session_id] = _Line(session_id, self.send, self.stopping, self._retire)
                line.thread.start()
            line.push(item)

    def depth(self, session_id: str) -> int:
        with self.lock:
            line = self.lines.get(session_id)
        return line.depth() if line else 0

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            lines = list(self.lines.values())
        for line in lines:
            with line.condition:
                line.condition.notify_all()
            line.thread.join(timeout=5)

    def _retire(self, line: _Line) -> None:
        leftovers: list[_Item] = []
        with self.lock:
            if self.lines.get(line.session_id) is line:
                # A push may have raced the retirement: hand its items to a new line.
                del self.lines[line.session_id]
                leftovers = list(line.items)
        if self.stopping.is_set():
            return
        for item in leftovers:
            self.push(line.session_id, item.message_id, due=item.due, gap_seconds=item.gap)
