"""A thousand live clients on one web process, served by the README's production command.

One module-scoped stack (tests/test_integration.py's Stack): redis-server, PostgreSQL, the
web under gunicorn.conf.py (one gevent worker), `flask worker` and an engine host. A crowd of
1,000 Socket.IO clients, all logged in as one user, runs in two processes of its own
(tests/live_crowd.py) while the tests check from outside, as a user would see it:

- every client hears each event the engine host emits within 2 s, while `/healthz`, asked
  ten times a second, answers within 1 s, and the session's SSE stream carries the events too;
- a send answers `sent`, having waited for the engine host in the same process;
- 200 idle connections from one client (silent, or sending half a request) leave `/healthz`
  answering within 1 s, and the web closes them after its keep-alive time;
- a client that stops answering Socket.IO's pings is dropped after the ping interval and
  timeout that the server announced.

The figures (connect time, fan-out latency, `/healthz` latency, the web's memory) are logged
at INFO: `pytest tests/test_live_clients.py --log-cli-level=INFO` shows them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.test_integration import (
    HTTP_TIMEOUT,
    PASSWORD,
    PHONE,
    STARTUP_SECONDS,
    EventLog,
    Stack,
    User,
    pair_session,
    stack_started,
    wait_until,
)

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)
CROWD = 1000
CROWD_PROCESSES = 2
CONNECT_SECONDS = 180
EVENTS = 5
HEARD_WITHIN_SECONDS = 2.0
HEALTHZ_WITHIN_SECONDS = 1.0
IDLE_CONNECTIONS = 200
SENDER = "919812345678"
# Short pings, so that a silent client is dropped within seconds (the default is 25 + 20 s);
# the timeout leaves a crowd process on a busy machine time to answer.
PING_INTERVAL, PING_TIMEOUT = 5, 10
# gunicorn.conf.py's keep-alive: how long a connection may sit without a whole request.
KEEPALIVE_SECONDS = 5


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    settings = {
        "SOCKETIO_PING_INTERVAL": str(PING_INTERVAL),
        "SOCKETIO_PING_TIMEOUT": str(PING_TIMEOUT),
        "LOG_LEVEL": "WARNING",
        # Three processes under the cluster's 100 connections: a thousand clients
        # connecting at once wait for one of the web's 30, as they would in production.
        "DATABASE_POOL_SIZE": "20",
        "DATABASE_MAX_OVERFLOW": "10",
    }
    with stack_started("live-clients", settings) as started:
        yield started


@pytest.fixture(scope="module")
def owner(stack: Stack) -> tuple[User, str]:
    """The crowd's user, with a paired session that contacts can write to."""
    import requests

    with stack.diagnostics():
        email = f"crowd-{uuid.uuid4().hex[:8]}@wagate-integration.dev"
        response = requests.post(
            f"{stack.base_url}/api/register", json={"email": email, "password": PASSWORD}, timeout=HTTP_TIMEOUT
        )
        assert response.status_code == 201, response.text
        user = User(email=email, token=response.json()["token"], events=EventLog(), base_url=stack.base_url)
        session_id = pair_session(stack, user, "crowd", PHONE).session_id
        wait_until(
            lambda: user.request("GET", f"/api/sessions/{session_id}/status").json()["status"] == "connected",
            STARTUP_SECONDS,
            "the crowd's session to be connected",
        )
    return user, session_id


@dataclass
class CrowdProcess:
    """One tests/live_crowd.py process and the JSON lines it writes."""

    popen: subprocess.Popen
    log_file: IO[bytes]
    lines: queue.Queue = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(json.loads(line))

    def next_line(self, timeout: float) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the crowd process said nothing for {timeout:.0f}s") from None

    def stop(self) -> None:
        try:
            self.popen.stdin.close()  # its cue to disconnect every client and end
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
        finally:
            self.reader.join(timeout=10)
            self.popen.stdout.close()
            self.log_file.close()


@dataclass
class Crowd:
    processes: list[CrowdProcess]
    connect_seconds: float


@pytest.fixture(scope="module")
def crowd(stack: Stack, owner: tuple[User, str]) -> Iterator[Crowd]:
    """1,000 Socket.IO clients logged in as the owner, connected and listening for messages."""
    user, _ = owner
    log.info("web worker RSS before the crowd: %.0f MB", web_worker_rss_mb(stack))
    processes = []
    try:
        with stack.diagnostics():
            for number in range(CROWD_PROCESSES):
                log_path = stack.logs / f"crowd-{number}.log"
                log_file = open(log_path, "wb")  # noqa: SIM115 (closed by CrowdProcess.stop)
                args = [sys.executable, "-m", "tests.live_crowd", stack.base_url, user.token]
                popen = subprocess.Popen(
                    [*args, str(CROWD // CROWD_PROCESSES), "message"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    cwd=Path(__file__).resolve().parents[1],
                    env=stack.env,
                )
                processes.append(CrowdProcess(popen, log_file))
            reports = [process.next_line(CONNECT_SECONDS) for process in processes]
            failed = [report for report in reports if report["failed"]]
            assert not failed, f"clients that could not connect: {failed}"
            assert sum(report["connected"] for report in reports) == CROWD, reports
        connect_seconds = max(report["seconds"] for report in reports)
        retries = sum(report["retries"] for report in reports)
        log.info("%d clients connected in %.2f s (%d tries again)", CROWD, connect_seconds, retries)
        yield Crowd(processes, connect_seconds)
    finally:
        for process in processes:
            process.stop()


class HealthProbe:
    """Asks /healthz ten times a second on a new connection each time, as a load balancer does."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/healthz"
        self.answers: list[tuple[float, int | str]] = []  # (seconds, status or error)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        import requests

        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                status: int | str = requests.get(self.url, timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            self.answers.append((time.monotonic() - started, status))
            self._stopping.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def assert_answered(self, within: float) -> None:
        assert self.answers, "no /healthz answer at all"
        failed = [(round(seconds, 3), status) for seconds, status in self.answers if status != 200]
        slow = [round(seconds, 3) for seconds, _ in self.answers if seconds > within]
        assert not failed and not slow, f"/healthz failed {failed} or was slower than {within}s: {slow}"
        seconds = sorted(seconds for seconds, _ in self.answers)
        log.info(
            "/healthz: %d answers, p50 %.0f ms, max %.0f ms",
            len(seconds),
            1000 * seconds[len(seconds) // 2],
            1000 * seconds[-1],
        )


def web_worker_rss_mb(stack: Stack) -> float:
    """Resident memory of the web's gunicorn worker (the master's one child)."""
    master = stack.processes["web"].popen.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"expected one gunicorn worker, found {children}"
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS for the web worker")


class StreamReader:
    """The session's Server-Sent Events stream, read on a thread: the texts of its messages."""

    def __init__(self, user: User, session_id: str) -> None:
        self.response = user.request("GET", f"/api/sessions/{session_id}/stream", stream=True)
        assert self.response.status_code == 200, self.response.text
        self.texts: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event = None
        with contextlib.suppress(Exception):  # the test closes the stream under it
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "message":
                    self.texts.append(json.loads(line.removeprefix("data: "))["message"])

    def close(self) -> None:
        self.response.close()
        self._thread.join(timeout=10)


def test_a_thousand_clients_hear_each_event_within_two_seconds(
    stack: Stack, owner: tuple[User, str], crowd: Crowd
) -> None:
    user, session_id = owner
    latencies: list[float] = []
    texts = []
    stream = StreamReader(user, session_id)
    with stack.diagnostics(), HealthProbe(stack.base_url) as health:
        for number in range(EVENTS):
            text = f"crowd event {number} {uuid.uuid4().hex[:6]}"
            texts.append(text)
            sent_at = time.time()
            response = user.request(
                "POST", f"/api/simulator/sessions/{session_id}/inbound", json={"from": SENDER, "message": text}
            )
            assert response.status_code == 202, response.text
            for process in crowd.processes:
                report = process.next_line(HEARD_WITHIN_SECONDS + 15)
                assert report["message"] == text, report
                missing = CROWD // CROWD_PROCESSES - len(report["heard"])
                assert not missing, f"{missing} clients of a crowd process never heard {text!r}"
                late = [round(at - sent_at, 3) for at in report["heard"] if at - sent_at > HEARD_WITHIN_SECONDS]
                assert not late, f"{len(late)} clients heard it after {HEARD_WITHIN_SECONDS}s: {late[:10]}"
                latencies += [at - sent_at for at in report["heard"]]
        try:  # the SSE stream, served by the same process, carries them too
            wait_until(lambda: stream.texts == texts, HEARD_WITHIN_SECONDS, "the messages on the SSE stream")
        finally:
            stream.close()
    health.assert_answered(within=HEALTHZ_WITHIN_SECONDS)
    latencies.sort()
    log.info(
        "fan-out to %d clients: p50 %.0f ms, p99 %.0f ms, max %.0f ms; web worker RSS %.0f MB",
        CROWD,
        1000 * latencies[len(latencies) // 2],
        1000 * latencies[int(len(latencies) * 0.99)],
        1000 * latencies[-1],
        web_worker_rss_mb(stack),
    )


def test_a_send_waits_for_its_outcome_while_the_crowd_listens(
    stack: Stack, owner: tuple[User, str], crowd: Crowd
) -> None:
    """The number check (an engine job the request waits for) and the wait for `sent` (woken
    by the settled-message listener) both run in the green web process."""
    user, session_id = owner
    with stack.diagnostics():
        started = time.monotonic()
        response = user.request(
            "POST", f"/api/sessions/{session_id}/send", json={"to": SENDER, "message": "to the crowd's contact"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "sent", response.json()
        log.info("a send answered `sent` in %.0f ms", 1000 * (time.monotonic() - started))


def _open_idle(port: int, half_a_request: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if half_a_request:  # a request line and a header, and then nothing more
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_idle_connections_from_one_client_leave_healthz_answering_and_are_closed(stack: Stack, crowd: Crowd) -> None:
    with stack.diagnostics():
        idle = [_open_idle(stack.web_port, half_a_request=n % 2 == 1) for n in range(IDLE_CONNECTIONS)]
        opened = time.monotonic()
        try:
            with HealthProbe(stack.base_url) as health:
                time.sleep(KEEPALIVE_SECONDS - 1)
            health.assert_answered(within=HEALTHZ_WITHIN_SECONDS)
            for sock in idle:
                sock.settimeout(max(0.1, opened + KEEPALIVE_SECONDS + 5 - time.monotonic()))
            still_open = [n for n, sock in enumerate(idle) if not _closed_by_server(sock)]
            assert not still_open, f"{len(still_open)} idle connections still open after the keep-alive time"
        finally:
            for sock in idle:
                sock.close()


def test_a_client_that_stops_answering_pings_is_dropped(stack: Stack, owner: tuple[User, str], crowd: Crowd) -> None:
    """A raw WebSocket speaks the Engine.IO protocol by hand, joins, then goes silent."""
    import websocket

    user, _ = owner
    with stack.diagnostics():
        url = f"ws://127.0.0.1:{stack.web_port}/socket.io/?EIO=4&transport=websocket"
        ws = websocket.create_connection(url, timeout=10)
        try:
            opening = ws.recv()
            assert opening.startswith("0"), opening
            handshake = json.loads(opening[1:])
            assert (handshake["pingInterval"], handshake["pingTimeout"]) == (PING_INTERVAL * 1000, PING_TIMEOUT * 1000)
            ws.send("40" + json.dumps({"token": user.token}))
            joined = ws.recv()
            assert joined.startswith("40{"), joined
            joined_at = time.monotonic()
            ws.settimeout(PING_INTERVAL + PING_TIMEOUT + 5)
            pings = 0
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                while True:
                    frame = ws.recv()  # pings ("2") and events; never a pong back
                    if not frame:
                        raise websocket.WebSocketConnectionClosedException("closed")
                    pings += frame == "2"
            dropped_after = time.monotonic() - joined_at
        finally:
            ws.close()
            ws.shutdown()  # the socket too, when the server had closed first
        assert pings >= 1, "the server never pinged"
        # Pinged one interval after joining; the server's sweep finds the missing answer at the
        # latest one timeout after that answer was due.
        assert dropped_after <= PING_INTERVAL + 2 * PING_TIMEOUT + 2, dropped_after
        log.info("a silent client was dropped %.1f s after it joined", dropped_after)
