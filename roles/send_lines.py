"""Per-session send lines inside the engine host.

Each session with messages waiting gets a thread that asks the session's send governor
(services/governor/queue.py) what to do next, one step at a time: send a message, or wait as long
as the governor says. Slow or paused sessions never hold up others. The queue itself lives
in Redis and the database, so a line that ends (idle, or its host stopping) loses nothing.
A step that fails because PostgreSQL or Redis is out of reach is tried again with backoff:
the line outlives the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from services.platform.logs import log_context_start
from services.platform.store_outage import LONGEST_WAIT_SECONDS, StoreOutage, store_unreachable

log = logging.getLogger(__name__)
IDLE_SECONDS = 5.0
# The longest a line sleeps before asking again (a nudge wakes it sooner).
POLL_SECONDS = 1.0
ERROR_WAIT_SECONDS = 5.0

# step(session_id) -> seconds to wait before the next step (0: go on now), or None when the
# session has nothing to send now (empty or paused).
StepFunction = Callable[[str], float | None]


class _Line:
    def __init__(self, session_id: str, step: StepFunction, stopping: threading.Event, on_exit) -> None:
        self.session_id = session_id
        self.step = step
        self.stopping = stopping
        self.on_exit = on_exit
        self.nudged = False
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"sender:{session_id}", daemon=True)
        self.outage = StoreOutage(f"send line of session {session_id}", log)

    def nudge(self) -> None:
        with self.condition:
            self.nudged = True
            self.condition.notify()

    def _sleep(self, seconds: float, longest: float = POLL_SECONDS) -> None:
        with self.condition:
            if not self.nudged and not self.stopping.is_set():
                self.condition.wait(max(0.0, min(seconds, longest)))
            self.nudged = False

    def _run(self) -> None:
        log_context_start(session_id=self.session_id)  # this thread's log lines name the session
        idle_since: float | None = None
        try:
            while not self.stopping.is_set():
                try:
                    wait = self.step(self.session_id)
                except Exception as exc:  # a broken step must not end the session's line
                    if store_unreachable(exc):  # backing off (a nudge still wakes it)
                        self._sleep(self.outage.failed(exc), longest=LONGEST_WAIT_SECONDS)
                        continue
                    log.exception("send step for session %s failed unexpectedly", self.session_id)
                    wait = ERROR_WAIT_SECONDS
                else:
                    self.outage.recovered()
                if wait is None:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= IDLE_SECONDS:
                        return
                    self._sleep(0.5)
                    continue
                idle_since = None
                if wait > 0:
                    self._sleep(wait)
        finally:
            self.on_exit(self)


class SessionSenders:
    def __init__(self, step: StepFunction) -> None:
        self.step = step
        self.lines: dict[str, _Line] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def nudge(self, session_id: str) -> None:
        """Something changed for the session (a message queued, a pause lifted): look now."""
        if self.stopping.is_set():
            return
        with self.lock:
            line = self.lines.get(session_id)
            if line is None:
                line = self.lines[session_id] = _Line(session_id, self.step, self.stopping, self._retire)
                line.thread.start()
        line.nudge()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            lines = list(self.lines.values())
        for line in lines:
            line.nudge()
            line.thread.join(timeout=5)

    def _retire(self, line: _Line) -> None:
        with self.lock:
            if self.lines.get(line.session_id) is line:
                del self.lines[line.session_id]
            raced = line.nudged  # a nudge that came as the line was ending
        if raced and not self.stopping.is_set():
            self.nudge(line.session_id)
