"""Outages on the production stack: Redis killed and PostgreSQL stopped under a steady client.

The stack of tests/test_integration.py (real redis-server and PostgreSQL, gunicorn as the
README's production command starts it, `flask worker`, `flask engine-host`), with the worker
and the engine host under a supervisor that starts them again when they exit, as production
runs them. A client sends a text every 50 ms, each one different, through a 15 s `kill -9`
of Redis (started again without its data) and a 15 s fast shutdown of PostgreSQL (`pg_ctl
stop -m fast`, then started again); before each outage the session's pace is slowed for a
few seconds, so a backlog waits in its queue when the outage comes. Then:

- no answer is a 500, and none takes more than 10 s;
- nothing answered with an error is sent (the simulated WhatsApp network's outbox);
- everything accepted (2xx) is sent exactly once.

The figures (answers by phase, the slowest answer, restarts, what the relay did, the stored
messages' statuses) are printed (`-s` or `-rP`).
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import app_config
from tests.test_integration import (
    DB_NAME,
    DB_USER,
    PASSWORD,
    EventLog,
    Stack,
    User,
    pair_session,
    stack_started,
    wait_until,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 15
SEND_EVERY_SECONDS = 0.05
SLOWEST_ALLOWED_SECONDS = 10
HTTP_TIMEOUT = 30  # longer than allowed, so a slow answer is measured rather than cut
DRAIN_SECONDS = 90  # for everything accepted to be sent after the last outage
# Before each outage, sends are slowed to one a second for three seconds: the rest wait in
# the session's queue when the outage comes.
BACKLOG_GAP_SECONDS = 1.0
BACKLOG_SECONDS = 3
PHONE = "919876500001"
RECIPIENT = "919812300001"


class Supervisor:
    """Starts the worker and the engine host again when they exit (systemd's Restart=always)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.restarts: collections.Counter[str] = collections.Counter()
        self.starts = {"worker": stack.start_worker, "engine-host": stack.start_engine_host}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for name, start in self.starts.items():
                if not self.stack.processes[name].running:
                    self.restarts[name] += 1
                    start()


@dataclass
class Answer:
    number: int
    started: float
    seconds: float
    status: int | None  # None: no answer (connection error or timeout)
    body: dict | None
    retry_after: str | None


class Client:
    """Sends a new text every SEND_EVERY_SECONDS, each in its own request, and keeps every answer."""

    def __init__(self, base_url: str, token: str, session_id: str) -> None:
        self.url = f"{base_url}/api/sessions/{session_id}/send"
        self.headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        self.answers: list[Answer] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="client")
        self._thread = threading.Thread(target=self._pace, name="client-pace", daemon=True)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)

    def _pace(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self._pool.submit(self._send, next(self._numbers))
            next_at += SEND_EVERY_SECONDS
            self._stopping.wait(max(next_at - time.monotonic(), 0))

    def _send(self, number: int) -> None:
        import requests

        started = time.monotonic()
        body = {"to": RECIPIENT, "message": text_of(number)}
        try:
            # A connection of its own: a kept-alive one the server is closing as it is reused
            # would be the client's error, not the server's.
            response = requests.post(self.url, json=body, headers=self.headers, timeout=HTTP_TIMEOUT)
            status, retry_after = response.status_code, response.headers.get("Retry-After")
            try:
                answer_body = response.json()
            except ValueError:
                answer_body = {"raw": response.text[:200]}
        except requests.RequestException as exc:
            status, answer_body, retry_after = None, {"exception": repr(exc)}, None
        with self._lock:
            self.answers.append(Answer(number, started, time.monotonic() - started, status, answer_body, retry_after))


def pace(stack: Stack, token: str, session_id: str, gap: float) -> None:
    """Set the session's gap between sends (asked again while the service is coming back)."""
    import requests

    def put() -> bool:
        response = requests.put(
            f"{stack.base_url}/api/sessions/{session_id}/pace",
            json={"minGapSeconds": gap, "jitterSeconds": 0},
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )
        return response.status_code == 200

    wait_until(put, 30, f"the session's pace to be set to {gap} s", interval=0.5)


def text_of(number: int) -> str:
    return f"outage probe {number}"


def outbox_texts(stack: Stack, session_id: str) -> collections.Counter[str]:
    path = stack.root / "data" / "engines" / "simulator" / "outbox" / f"{session_id}.jsonl"
    if not path.exists():
        return collections.Counter()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return collections.Counter(line["text"] for line in lines if line["text"].startswith("outage probe"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    settings = {
        # The relay looks every second at messages two seconds old; a message an engine
        # host took and never settled is taken again after ten.
        "RELAY_INTERVAL_SECONDS": "1",
        "RELAY_GRACE_SECONDS": "2",
        "RELAY_IN_FLIGHT_SECONDS": "10",
        "API_RATE_LIMIT": "100000 per 15 minutes",  # 20 sends a second for a minute
    }
    with stack_started("outages", settings) as started:
        yield started


@pytest.fixture(scope="module")
def sender(stack: Stack) -> tuple[str, str]:
    """A user's token and a paired, connected session."""
    import requests

    email = f"outages-{int(time.time())}@wagate-integration.dev"
    response = requests.post(f"{stack.base_url}/api/register", json={"email": email, "password": PASSWORD}, timeout=15)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    stack.flask("set-plan", "users", "set-plan", email, "enterprise")  # no message quota to run out of
    user = User(email=email, token=token, events=EventLog(), base_url=stack.base_url)
    session_id = pair_session(stack, user, "outages", PHONE).session_id
    wait_until(
        lambda: user.request("GET", f"/api/sessions/{session_id}/status").json()["status"] == "connected",
        15,
        "the session to be connected",
    )
    return token, session_id


def test_the_roles_connections_have_a_statement_timeout(stack: Stack, tmp_path: Path) -> None:
    from sqlalchemy import text

    from app import create_app
    from extensions import db

    url = f"postgresql+psycopg://{DB_USER}@127.0.0.1:{stack.pg_port}/{DB_NAME}"
    app = create_app(app_config(tmp_path, SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "30s"
        db.session.remove()
        db.engine.dispose()


def test_a_client_through_a_redis_kill_and_a_postgresql_stop(stack: Stack, sender: tuple[str, str]) -> None:
    token, session_id = sender
    phases: dict[str, tuple[float, float]] = {}
    with stack.diagnostics(), Supervisor(stack) as supervisor:
        with Client(stack.base_url, token, session_id) as client:
            time.sleep(3)
            pace(stack, token, session_id, BACKLOG_GAP_SECONDS)  # a backlog waits in Redis...
            time.sleep(BACKLOG_SECONDS)
            down = time.monotonic()
            stack.processes["redis"].kill()  # ...and goes with its data
            stack.processes["redis"].log_file.close()
            time.sleep(OUTAGE_SECONDS)
            stack.redis_start_again()
            phases["redis"] = (down, time.monotonic())
            pace(stack, token, session_id, 0)
            time.sleep(5)
            pace(stack, token, session_id, BACKLOG_GAP_SECONDS)  # a backlog the engine host takes from
            time.sleep(BACKLOG_SECONDS)
            down = time.monotonic()
            stack.postgres_stop()
            time.sleep(OUTAGE_SECONDS)
            stack.postgres_start_again()
            phases["postgresql"] = (down, time.monotonic())
            pace(stack, token, session_id, 0)
            time.sleep(5)
        answers = sorted(client.answers, key=lambda answer: answer.number)

        accepted = {answer.number for answer in answers if answer.status is not None and 200 <= answer.status < 300}
        refused = {answer.number for answer in answers if answer.number not in accepted}
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            sent = outbox_texts(stack, session_id)
            if all(sent[text_of(number)] for number in accepted):
                break
            time.sleep(1)
        time.sleep(3)  # anything that would be sent twice or late
        sent = outbox_texts(stack, session_id)

        report = _report(answers, phases, accepted, sent, supervisor)
        print(report)  # noqa: T201 (the figures: shown with -s or -rP)
        errors = [answer for answer in answers if answer.status is not None and answer.status >= 500]
        assert [answer for answer in errors if answer.status != 503] == [], report
        assert all(answer.retry_after for answer in errors), report
        unanswered = [answer for answer in answers if answer.status is None]
        assert unanswered == [], f"{unanswered[:5]}\n{report}"
        slowest = max(answers, key=lambda answer: answer.seconds)
        assert slowest.seconds <= SLOWEST_ALLOWED_SECONDS, f"{slowest}\n{report}"
        sent_refused = sorted(number for number in refused if sent[text_of(number)])
        assert sent_refused == [], f"answered with an error, yet sent: {sent_refused[:20]}\n{report}"
        never_sent = [answer for answer in answers if answer.number in accepted and not sent[text_of(answer.number)]]
        assert never_sent == [], f"accepted, never sent: {never_sent[:10]}\n{report}"
        twice = sorted(text for text, count in sent.items() if count > 1)
        assert twice == [], f"sent more than once: {twice[:20]}\n{report}"


def _relay_log(stack: Stack) -> str:
    """What the workers' relays logged: data losses noticed, messages lined up again."""
    lost = lined_up = resumed = 0
    for name, process in stack.processes.items():
        if name.startswith("worker"):
            for line in process.log_path.read_text(errors="replace").splitlines():
                lost += "Redis lost its data" in line
                found = re.search(r"relay: (\d+) message\(s\) lined up again, (\d+) batch", line)
                if found:
                    lined_up += int(found.group(1))
                    resumed += int(found.group(2))
    return f"{lost} data loss(es) noticed, {lined_up} message(s) lined up again, {resumed} batch(es) resumed"


def _report(answers: list[Answer], phases, accepted: set[int], sent, supervisor: Supervisor) -> str:
    def phase_of(answer: Answer) -> str:
        for name, (start, end) in phases.items():
            if start <= answer.started <= end:
                return f"during the {name} outage"
        return "outside the outages"

    table = collections.defaultdict(collections.Counter)
    for answer in answers:
        table[phase_of(answer)][str(answer.status)] += 1
    lines = [f"{len(answers)} sends, {len(accepted)} accepted, {sum(sent.values())} sent (outbox lines)"]
    for phase, counts in table.items():
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
        lines.append(f"  {phase}: {shown}")
    seconds = sorted(answer.seconds for answer in answers)
    if seconds:
        lines.append(
            f"  answer time: median {seconds[len(seconds) // 2]:.3f} s, p99 {seconds[int(len(seconds) * 0.99)]:.3f} s, "
            f"slowest {seconds[-1]:.3f} s"
        )
    lines.append(f"  restarted by the supervisor: {dict(supervisor.restarts) or 'nothing'}")
    lines.append(f"  the relay: {_relay_log(supervisor.stack)}")
    statuses = supervisor.stack.sql(
        "SELECT status, count(*) FROM messages WHERE body LIKE 'outage probe %%' GROUP BY 1"
    )
    lines.append(f"  stored messages by status: {dict(sorted(statuses))}")
    codes = collections.Counter(
        (answer.status, (answer.body or {}).get("code")) for answer in answers if answer.status not in (200, 202)
    )
    lines.append(f"  refusals: {dict(codes)}")
    return "\n".join(lines)
