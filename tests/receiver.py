"""A real HTTP webhook receiver on 127.0.0.1 for the tests: it records every request, raw
body and all, and answers from a script (then 200), or with one status while it is down."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"  # an answer that never comes (until the test releases it)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None
    arrived: float = field(default_factory=time.monotonic)

    @property
    def attempt(self) -> int:
        return int(self.headers["X-Wagate-Attempt"])

    @property
    def delivery_id(self) -> str:
        return self.headers["X-Wagate-Delivery"]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: list[Answer | str] = []
        self._lock = threading.Lock()
        self.release = threading.Event()
        self._down_until = 0.0
        self._down_status = 503
        self._in_flight = 0
        self.most_at_once = 0  # the most requests it was answering at the same time
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll: closing waits for the serving loop to look again.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def answer(self, *answers: Answer | int | str) -> None:
        """Answer the next requests with these, in order (a bare number is a status)."""
        with self._lock:
            self._script.extend(Answer(a) if isinstance(a, int) else a for a in answers)

    def down(self, seconds: float, status: int = 503) -> None:
        """Answer every request with `status` for the next `seconds`, as a receiver that is down."""
        self._down_status = status
        self._down_until = time.monotonic() + seconds

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    @property
    def succeeded(self) -> list[Received]:
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _next(self) -> Answer | str:
        if time.monotonic() < self._down_until:
            return Answer(self._down_status, body=b"down")
        with self._lock:
            return self._script.pop(0) if self._script else Answer()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver._lock:
                    receiver._in_flight += 1
                    receiver.most_at_once = max(receiver.most_at_once, receiver._in_flight)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = Received(self.path, dict(self.headers.items()), body)
                answer = receiver._next()
                if answer == HANG:
                    receiver.received.append(record)
                    receiver.release.wait(30)
                    receiver._done()
                    return
                record.answered = answer.status
                receiver.received.append(record)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                receiver._done()  # before the last bytes: the caller cannot be done before this
                self.wfile.write(answer.body)

            def log_message(self, format, *args) -> None:
                pass

        return Handler
