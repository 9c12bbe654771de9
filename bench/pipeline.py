"""The send pipeline on the production stack and on the embedded default, beside a bare route.

    python -m bench.pipeline [--quick] [--seconds 60] [--sessions 100] [--connections 16]
                             [--bulk 10000] [--embedded-sends 600] [--kill] [--keep-logs]

Everything it measures runs on loopback in a temporary directory, started and stopped by
the benchmark (also on Ctrl-C or an error):

* the production stack as the README runs it: a real PostgreSQL (initdb, fast and unsafe
  settings: a throwaway cluster), a real redis-server, `flask db upgrade`, gunicorn
  (`-c gunicorn.conf.py wsgi:app`: one gevent worker), `flask --app app worker` and
  `flask --app app engine-host --id host-a`, the simulator engine;
* the embedded default, `python app.py` (SQLite, in-process Redis stand-in);
* a bare baseline: a one-route Flask JSON app under the same gunicorn command.

Load comes from a separate process (asyncio, keep-alive connections, 16 by default).
Accounts, sessions (paired by decoding their QR) and each session's pace (no gaps, no
jitter, no warm-up, ceilings at their maximum) are set up through the HTTP API; accounts
start on the unlimited Enterprise plan (`DEFAULT_PLAN`), whose 15 sessions each means
100 sessions take 7 accounts. SEND_WAIT_SECONDS=0, so `/send` answers 202 once the message
is stored and handed on; the simulator's receipts come after 0.1 s (delivered) and 0.2 s
(read). Every recipient is a distinct number the simulator reads (see bench_numbers).

Figures: bare route and `/send` rate, p50, p99 and their ratio; end-to-end messages per
second through sent, delivered and read; a bulk batch's time to `finished`; CPU ms per
message per process from /proc (utime + stime of every process in a role's process group,
its reaped children included), divided by the messages' progress (sent, delivered and read
each count a third), so a busy machine barely moves it. Each wait has a budget: a phase
that runs out of it is reported with its partial figure, marked `partial`.

`--kill` adds a phase: `kill -9` of the engine host and, later, of the web process in the
middle of sustained load, each restarted at once; then every accepted (200/202) message
must reach `sent` or beyond (lost: those that did not) and the simulator's outboxes must
hold no message id and no recipient twice (sent twice). Not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.throughput import PASSWORD, TEXT, bench_numbers, decode_qr, numbers_check, out

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HTTP_TIMEOUT = 30
# Enterprise, the unlimited plan every account starts on here, allows this many sessions.
SESSIONS_PER_ACCOUNT = 15
# Where each phase's recipients start: no number is used twice in a run.
PREFIX_EMBEDDED, PREFIX_SENDS, PREFIX_KILL, PREFIX_BULK = "91981", "91982", "91983", "91984"
SENT_LIKE = ("sent", "delivered", "read", "played")
# The pace a user sets through the API to switch it off (the API's largest ceilings).
PACE_OFF = {"minGapSeconds": 0, "jitterSeconds": 0, "perMinute": 100_000, "perDay": 100_000, "warmup": []}
# Settings every target shares: the machinery's speed, not a safe pace or a patient client.
BENCH_ENV = {
    "WA_ENGINE": "simulator",
    "DEFAULT_PLAN": "enterprise",
    "SEND_WAIT_SECONDS": "0",
    "SIMULATOR_RECEIPT_SECONDS": "0.1",
    "BULK_MIN_DELAY_MS": "0",
    "BULK_WAIT_SECONDS": "0",
    "PACE_MIN_GAP_SECONDS": "0",
    "PACE_JITTER_SECONDS": "0",
    "PACE_PER_MINUTE": "100000",
    "PACE_PER_DAY": "100000",
    "PACE_WARMUP": "",
    "GOVERNOR_MAX_COLD_PER_DAY": "0",
    "API_RATE_LIMIT": "100000000 per 15 minutes",
    "AUTH_RATE_LIMIT": "100000 per 15 minutes",
    "STATUS_RATE_LIMIT": "100000 per minute",
    "LOG_LEVEL": "WARNING",
}


def gunicorn_args(port: int, app: str) -> list[str]:
    """The README's production web command, on a loopback port (no control socket in $HOME)."""
    return [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        app,
    ]


def bare_app():
    """The baseline: one JSON route, the size of a send, served by the same gunicorn command."""
    from flask import Flask, jsonify, request

    app = Flask("bench-bare")

    @app.post("/ping")
    def ping():
        body = request.get_json()
        return jsonify(success=True, to=body["to"], status="queued"), 202

    return app


# -- the load generator (runs in a process of its own) --------------------------------------


@dataclass
class Load:
    """What one load run sends: request i goes to targets[i % len(targets)] for number i."""

    port: int
    targets: list[tuple[str, str]]  # (path, Authorization header)
    prefix: str
    connections: int = 16
    seconds: float | None = None  # run this long at most
    count: int | None = None  # send this many at most


@dataclass
class LoadResult:
    codes: dict[int, int]
    latencies: list[float]  # seconds, of every answered request, sorted
    accepted: list[str]  # the numbers whose send was answered 200 or 202
    seconds: float
    started: float  # time.time() of the first request

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return sum(n for code, n in self.codes.items() if code in (200, 202)) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return math.nan
        return self.latencies[min(len(self.latencies) - 1, int(share * len(self.latencies)))]


def load_run(load: Load) -> LoadResult:
    """Entry point of the load process."""
    return asyncio.run(_load(load))


async def _load(load: Load) -> LoadResult:
    cap = load.count if load.count is not None else min(10**6, int((load.seconds or 1) * 5000))
    numbers = bench_numbers(load.prefix, cap)
    codes: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []
    accepted: list[str] = []
    state = {"next": 0}
    start = time.perf_counter()
    started = time.time()
    end = start + load.seconds if load.seconds is not None else math.inf

    def take() -> int | None:
        i = state["next"]
        if i >= cap or time.perf_counter() >= end:
            return None
        state["next"] = i + 1
        return i

    async def connection() -> None:
        reader = writer = None
        while (i := take()) is not None:
            path, authorization = load.targets[i % len(load.targets)]
            body = json.dumps({"to": numbers[i], "message": TEXT}).encode()
            lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{load.port}", "Content-Type: application/json"]
            lines += [f"Content-Length: {len(body)}"] + ([f"Authorization: {authorization}"] if authorization else [])
            request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
            sent_at = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", load.port)
                writer.write(request)
                status, keep = await asyncio.wait_for(_response(reader), HTTP_TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                codes[0] += 1  # no answer (a server killed or restarting): the client tries the next
                writer = _close(writer)
                await asyncio.sleep(0.2)
                continue
            latencies.append(time.perf_counter() - sent_at)
            codes[status] += 1
            if status in (200, 202):
                accepted.append(numbers[i])
            if not keep:
                writer = _close(writer)
        _close(writer)

    await asyncio.gather(*(connection() for _ in range(load.connections)))
    return LoadResult(dict(codes), sorted(latencies), accepted, time.perf_counter() - start, started)


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.x response; (status, whether the connection stays open)."""
    version, status, *_ = (await reader.readuntil(b"\r\n")).split()
    length, keep = None, version == b"HTTP/1.1"
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value == b"keep-alive"
        elif name == b"transfer-encoding":
            raise ValueError("chunked answers are not expected here")
    if length is None:
        await reader.read()
        return int(status), False
    await reader.readexactly(length)
    return int(status), keep


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
    return None


class LoadProcess:
    """One spawned process that runs loads, so the generator's CPU is its own."""

    def __enter__(self) -> LoadProcess:
        self.pool = multiprocessing.get_context("spawn").Pool(1)
        return self

    def __exit__(self, *exc) -> None:
        self.pool.terminate()
        self.pool.join()

    def start(self, load: Load):
        return self.pool.apply_async(load_run, (load,))

    def run(self, load: Load) -> LoadResult:
        return self.start(load).get()


# -- processes and their CPU ----------------------------------------------------------------


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in a process group, with the children it reaped."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # pgrp; then utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    """CPU seconds of one live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:13]) / CLOCK_TICKS


class Cpu:
    """CPU seconds per role between two readings."""

    def __init__(self, roles: dict[str, Callable[[], float]]) -> None:
        self.roles = roles
        self.before = self.read()

    def read(self) -> dict[str, float]:
        return {role: seconds() for role, seconds in self.roles.items()}

    def spent(self) -> dict[str, float]:
        after = self.read()
        return {role: after[role] - self.before[role] for role in self.roles}


def _wait(predicate: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- the targets ----------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    token: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token}"


@dataclass
class Target:
    """A gateway reached over HTTP, with a way to count its messages' progress."""

    name: str
    base_url: str
    accounts: list[Account] = field(default_factory=list)
    sessions: list[tuple[str, Account]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port

    def request(self, method: str, path: str, account: Account | None = None, **kwargs):
        import requests

        headers = {"Authorization": account.authorization} if account else {}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)

    def register(self, count: int) -> None:
        for n in range(count):
            email = f"bench-{self.name}-{n}@example.com"
            response = self.request("POST", "/api/register", json={"email": email, "password": PASSWORD})
            if response.status_code != 201:
                raise SystemExit(f"{self.name}: register answered {response.status_code}: {response.text[:300]}")
            self.accounts.append(Account(email, response.json()["token"]))

    def pair(self, count: int, *, first_account: int = 0) -> None:
        """`count` sessions over the accounts from `first_account`, paired as a phone would."""
        owners = [self.accounts[first_account + n // SESSIONS_PER_ACCOUNT] for n in range(count)]
        phones = range(len(self.sessions), len(self.sessions) + count)  # each session its own phone
        with ThreadPoolExecutor(max_workers=8) as pool:
            paired = list(pool.map(self._pair_one, phones, owners))
        self.sessions.extend(paired)

    def _pair_one(self, n: int, account: Account) -> tuple[str, Account]:
        import requests

        response = self.request("POST", "/api/sessions", account, json={"name": f"Bench {n}"})
        if response.status_code != 201:
            raise SystemExit(f"{self.name}: creating a session answered {response.status_code}: {response.text[:300]}")
        session_id = response.json()["sessionId"]
        body = self.request("GET", f"/api/sessions/{session_id}/qr", account).json()
        url = decode_qr(body["qrCode"])
        phone = f"9198765{n:05d}"
        response = requests.post(url, json={"phone": phone}, timeout=HTTP_TIMEOUT)
        if response.status_code not in (200, 202):
            raise SystemExit(f"{self.name}: pairing answered {response.status_code}: {response.text[:300]}")

        def connected() -> bool:
            status = self.request("GET", f"/api/sessions/{session_id}/status", account).json()
            return status.get("status") == "connected"

        if not _wait(connected, 60, 0.2):
            raise SystemExit(f"{self.name}: session {session_id} did not connect")
        response = self.request("PUT", f"/api/sessions/{session_id}/pace", account, json=PACE_OFF)
        if response.status_code != 200:
            raise SystemExit(f"{self.name}: setting the pace answered {response.status_code}: {response.text[:300]}")
        return session_id, account

    def send_targets(self) -> list[tuple[str, str]]:
        return [(f"/api/sessions/{session_id}/send", account.authorization) for session_id, account in self.sessions]

    def statuses(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError

    def outbox_dir(self) -> Path:
        raise NotImplementedError


def progress(statuses: dict[str, int]) -> float:
    """Messages' worth of progress: sent, delivered and read each count a third."""
    sent = sum(statuses.get(status, 0) for status in SENT_LIKE)
    delivered = sum(statuses.get(status, 0) for status in ("delivered", "read", "played"))
    read = sum(statuses.get(status, 0) for status in ("read", "played"))
    return (sent + delivered + read) / 3


STATUS_QUERY = "SELECT status, count(*) FROM messages WHERE direction = 'outbound' AND phone LIKE {} GROUP BY status"


class Production(Target):
    def __init__(self, stack) -> None:
        super().__init__("production", stack.base_url)
        self.stack = stack
        self.bulk_session: tuple[str, Account] | None = None
        self._db = None
        self.db_pid = 0

    def statuses(self, prefix: str) -> dict[str, int]:
        return dict(self.sql(STATUS_QUERY.format("%s"), f"{prefix}%"))

    def sql(self, query: str, *params) -> list[tuple]:
        """Read the database on one connection, whose backend's CPU the figures leave out."""
        if self._db is None:
            import psycopg

            conninfo = f"host=127.0.0.1 port={self.stack.pg_port} user=wagate dbname=wagate"
            self._db = psycopg.connect(conninfo, autocommit=True)
            (self.db_pid,) = self._db.execute("SELECT pg_backend_pid()").fetchone()
        return self._db.execute(query, params).fetchall()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def outbox_dir(self) -> Path:
        return self.stack.root / "data" / "engines" / "simulator" / "outbox"


class Embedded(Target):
    def __init__(self, base_url: str, data_dir: Path) -> None:
        super().__init__("embedded", base_url)
        self.data_dir = data_dir

    def statuses(self, prefix: str) -> dict[str, int]:
        uri = f"file:{self.data_dir / 'wagate.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
            return dict(conn.execute(STATUS_QUERY.format("?"), (f"{prefix}%",)).fetchall())

    def outbox_dir(self) -> Path:
        return self.data_dir / "engines" / "simulator" / "outbox"


# -- the stack ------------------------------------------------------------------------------


class Bench:
    """The processes of every target, on the integration tests' Stack."""

    def __init__(self, root: Path) -> None:
        from tests.test_integration import Stack

        self.root = root
        (root / "logs").mkdir()
        self.stack = Stack(root=root)

    def cpu(self, name: str) -> Callable[[], float]:
        """CPU seconds of one started process and its descendants."""
        return lambda: group_cpu(self.stack.processes[name].popen.pid)

    def start_servers(self) -> None:
        from tests.test_integration import _postgres_bin, _redis_server

        redis_server, pg_bin = _redis_server(), _postgres_bin()
        if redis_server is None or pg_bin is None:
            raise SystemExit("needs redis-server and PostgreSQL (apt-get install redis-server postgresql)")
        self.stack.start_redis(redis_server)
        self.stack.start_postgres(pg_bin)
        self.stack.configure()
        self.stack.env.update(BENCH_ENV)

    def start_bare(self) -> None:
        from tests.test_integration import _free_port

        self.bare_port = _free_port()
        self.stack.start("bare", gunicorn_args(self.bare_port, "bench.pipeline:bare_app()"))
        url = f"http://127.0.0.1:{self.bare_port}/ping"
        self._until_answers(url, "bare", method="POST", json={"to": "1", "message": TEXT})

    def start_embedded(self, bulk: int) -> Embedded:
        from tests.test_integration import _free_port

        port = _free_port()
        data_dir = self.root / "embedded"
        env = {k: v for k, v in self.stack.env.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        env.update(DATA_DIR=str(data_dir), HOST="127.0.0.1", PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}")
        self.stack.start("embedded", [sys.executable, "app.py"], env=env)
        url = f"http://127.0.0.1:{port}"
        self._until_answers(f"{url}/healthz", "embedded", timeout=120)
        return Embedded(url, data_dir)

    def start_production(self, bulk: int) -> Production:
        self.stack.env.update(
            BULK_MAX_CONTACTS=str(max(bulk, 10000)), MAX_CONTENT_LENGTH=str(max(1024 * 1024, 64 * bulk))
        )
        self.stack.migrate()
        self.start_web()
        self.stack.start_worker()
        self.stack.start_engine_host()
        if not _wait(self.stack.workers_registered, 90):
            raise SystemExit("the worker and engine host did not register")
        self.stack.wait_healthy()
        return Production(self.stack)

    def start_web(self) -> None:
        self.stack.start("web", gunicorn_args(self.stack.web_port, "wsgi:app"))
        self._until_answers(f"{self.stack.base_url}/healthz", "web", ok=(200, 503))

    def _until_answers(self, url: str, name: str, *, method="GET", ok=(200, 202), timeout=60, **kwargs) -> None:
        import requests

        def answers() -> bool:
            self.stack.assert_running(name)
            return requests.request(method, url, timeout=5, **kwargs).status_code in ok

        if not _wait(answers, timeout, 0.2):
            raise SystemExit(f"{name} did not answer at {url}; its log:\n{self.stack.processes[name].tail()}")

    def stop(self, name: str) -> None:
        process = self.stack.processes.pop(name)
        process.stop()
        self.stack.processes[f"{name}#stopped"] = process  # its log stays; no longer expected to run

    def close(self, keep_logs: bool) -> None:
        try:
            self.stack.stop_all()
        finally:
            if keep_logs:
                out(f"logs kept in {self.root / 'logs'}")
            else:
                shutil.rmtree(self.root, ignore_errors=True)


# -- the phases -----------------------------------------------------------------------------


@dataclass
class Flow:
    """Sends under load, then their way to `read`, with the CPU each role spent on them."""

    load: LoadResult
    seconds: float = 0.0  # from the first request until every accepted message was read
    statuses: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    complete: bool = False

    @property
    def accepted(self) -> int:
        return len(self.load.accepted)

    @property
    def read(self) -> int:
        return self.statuses.get("read", 0) + self.statuses.get("played", 0)

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def cpu_ms(self, role: str | None = None) -> float:
        done = progress(self.statuses)
        spent = sum(self.cpu.values()) if role is None else self.cpu[role]
        return 1000 * spent / done if done else math.nan


def flow(target: Target, loads: LoadProcess, load: Load, cpu: Cpu, budget: float) -> Flow:
    """Drive `load`, then wait (up to `budget` s after it) for every accepted message to be read."""
    result = loads.run(load)
    outcome = Flow(result)

    def all_read() -> bool:
        outcome.statuses = target.statuses(load.prefix)
        return outcome.read >= outcome.accepted

    outcome.complete = _wait(all_read, budget, 0.5) and load.count in (None, outcome.accepted)
    outcome.seconds = time.time() - result.started
    outcome.cpu = cpu.spent()
    return outcome


@dataclass
class Bulk:
    count: int
    seconds: float = 0.0
    settled: int = 0
    finished: bool = False
    cpu: dict[str, float] = field(default_factory=dict)


def bulk_phase(target: Production, count: int, cpu: Cpu, budget: float) -> Bulk:
    """One account with one session sends one text to `count` numbers; time until `finished`."""
    numbers = bench_numbers(PREFIX_BULK, count)
    _, account = target.bulk_session
    result = Bulk(count)
    start = time.monotonic()
    response = target.request(
        "POST", "/api/whatsapp/bulk-send", account, json={"contacts": numbers, "message": TEXT, "delay": 0}
    )
    if response.status_code not in (200, 202):
        raise SystemExit(f"bulk-send answered {response.status_code}: {response.text[:300]}")
    batch_id = response.json()["batchId"]

    def finished() -> bool:
        (status,) = target.sql("SELECT status FROM bulk_batches WHERE id = %s", batch_id)[0]
        return status == "finished"

    result.finished = _wait(finished, budget, 0.5)
    result.seconds = time.monotonic() - start
    statuses = target.statuses(PREFIX_BULK)
    result.settled = sum(statuses.get(status, 0) for status in (*SENT_LIKE, "failed"))
    result.cpu = cpu.spent()
    return result


@dataclass
class Crash:
    accepted: int = 0
    lost: int = 0
    failed: int = 0
    ids_twice: int = 0
    recipients_twice: int = 0
    complete: bool = False
    notes: list[str] = field(default_factory=list)


def kill_phase(bench: Bench, target: Production, loads: LoadProcess, seconds: float, budget: float) -> Crash:
    """Sustained sends; kill -9 the engine host at a third, the web process at two thirds."""
    load = Load(target.port, target.send_targets(), PREFIX_KILL, seconds=seconds)
    running = loads.start(load)
    start = time.monotonic()
    crash = Crash()
    for at, name, restart in ((1 / 3, "engine-host", bench.stack.start_engine_host), (2 / 3, "web", bench.start_web)):
        time.sleep(max(0.0, start + at * seconds - time.monotonic()))
        bench.stack.processes[name].kill()
        killed = time.monotonic()
        restart()
        crash.notes.append(
            f"{name} killed -9 at {killed - start:.1f} s, started again in {time.monotonic() - killed:.1f} s"
        )
    result = running.get()
    crash.accepted = len(result.accepted)
    accepted = set(result.accepted)

    def settled() -> bool:
        rows = target.sql(
            "SELECT phone, status FROM messages WHERE direction = 'outbound' AND phone LIKE %s", f"{PREFIX_KILL}%"
        )
        status = dict(rows)
        crash.lost = sum(1 for phone in accepted if status.get(phone) not in SENT_LIKE)
        crash.failed = sum(1 for phone in accepted if status.get(phone) == "failed")
        return crash.lost == crash.failed

    crash.complete = _wait(settled, budget, 1.0)
    ids: collections.Counter[str] = collections.Counter()
    recipients: collections.Counter[str] = collections.Counter()
    for path in target.outbox_dir().glob("*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["to"].startswith(PREFIX_KILL):
                ids[entry["id"]] += 1
                recipients[entry["to"]] += 1
    crash.ids_twice = sum(1 for n in ids.values() if n > 1)
    crash.recipients_twice = sum(1 for n in recipients.values() if n > 1)
    crash.notes.append(f"answers during the kills: {dict(sorted(result.codes.items()))} (0: no answer)")
    return crash


# -- the report -----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.3f}x"


def report(args, bare: LoadResult, bare_cpu: float, embedded: Flow | None, production: Flow | None, bulk, crash):
    rows: list[tuple[str, str, str, str, str]] = []
    emb, prod = embedded, production

    def partial(outcome: Flow | None, text: str) -> str:
        return text if outcome is None or outcome.complete else f"{text} (partial)"

    bare_ms = 1000 * bare_cpu / bare.answered if bare.answered else math.nan
    rows.append(
        (
            f"/send accepted, req/s ({args.connections} connections)",
            fmt(emb and emb.load.rate),
            fmt(prod and prod.load.rate),
            fmt(bare.rate),
            ratio(prod and prod.load.rate, bare.rate),
        )
    )
    for share, label in ((0.5, "p50"), (0.99, "p99")):
        rows.append(
            (
                f"/send {label}, ms",
                fmt(emb and 1000 * emb.load.percentile(share)),
                fmt(prod and 1000 * prod.load.percentile(share)),
                fmt(1000 * bare.percentile(share)),
                ratio(prod and prod.load.percentile(share), bare.percentile(share)),
            )
        )
    rows.append(
        (
            "end to end, msg/s read (first send to last read)",
            partial(emb, fmt(emb and emb.rate)),
            partial(prod, fmt(prod and prod.rate)),
            "",
            "",
        )
    )
    rows.append(
        (
            "messages accepted / read",
            f"{emb.accepted} / {emb.read}" if emb else "-",
            f"{prod.accepted} / {prod.read}" if prod else "-",
            "",
            "",
        )
    )
    if bulk is not None:
        text = (
            f"{bulk.seconds:.1f} s"
            if bulk.finished
            else f"not finished in {bulk.seconds:.0f} s: {bulk.settled:,} of {bulk.count:,} settled"
        )
        rows.append((f"{bulk.count:,}-recipient bulk, to finished", "", text, "", ""))
        done = bulk.settled or math.nan
        rows.append(("bulk CPU ms per recipient, all processes", "", fmt(1000 * sum(bulk.cpu.values()) / done), "", ""))
    if prod is not None:
        for role in ("web", "worker", "engine-host", "postgres", "redis"):
            rows.append(
                (
                    f"CPU ms per message: {role}",
                    "",
                    partial(prod, fmt(prod.cpu_ms(role), 2)),
                    fmt(bare_ms, 3) if role == "web" else "",
                    ratio(prod.cpu_ms(role), bare_ms) if role == "web" else "",
                )
            )
    rows.append(
        (
            "CPU ms per message, all processes (accept to read)",
            partial(emb, fmt(emb and emb.cpu_ms(), 2)),
            partial(prod, fmt(prod and prod.cpu_ms(), 2)),
            fmt(bare_ms, 3),
            ratio(prod and prod.cpu_ms(), bare_ms),
        )
    )
    if crash is not None:
        rows.append(("kill -9 engine host + web: accepted", "", f"{crash.accepted}", "", ""))
        lost = f"{crash.lost} ({crash.failed} failed)" if crash.failed else str(crash.lost)
        lost = lost if crash.complete else f"{lost} not sent yet when the budget was spent"
        rows.append(("  lost (accepted, never sent)", "", lost, "", ""))
        rows.append(
            ("  sent twice (same id / same recipient)", "", f"{crash.ids_twice} / {crash.recipients_twice}", "", "")
        )

    header = ("figure", "embedded", "production", "bare baseline", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    out()
    out("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)) + " |")
    out("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        out("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
    out()
    answers = [(name, outcome.load.codes) for name, outcome in (("embedded", emb), ("production", prod)) if outcome]
    out("answers (status: count; 0 is no answer): " + ", ".join(f"{name} {codes}" for name, codes in answers))
    out(f"  bare baseline {bare.codes}")
    out("ratio: production / bare baseline. CPU per message: CPU seconds of each process group over")
    out("the phase, divided by the messages' progress (sent, delivered and read a third each).")
    if crash is not None:
        for note in crash.notes:
            out(f"kill: {note}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: shorter phases, a 2,000 bulk")
    parser.add_argument("--seconds", type=float, help="sustained production sends (default 60, quick 15)")
    parser.add_argument("--sessions", type=int, default=100, help="production sessions (default 100)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--bare-seconds", type=float, help="bare route load (default 10, quick 5)")
    parser.add_argument("--embedded-sends", type=int, help="embedded sends, 16 clients (default 600, quick 200)")
    parser.add_argument("--embedded-sessions", type=int, default=10, help="embedded sessions (default 10)")
    parser.add_argument("--bulk", type=int, help="bulk recipients (default 10000, quick 2000; 0 skips it)")
    parser.add_argument("--budget", type=float, help="seconds each phase may wait to finish (default 60, quick 20)")
    parser.add_argument("--kill", action="store_true", help="also kill -9 the engine host and web under load")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded default")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and data")
    args = parser.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (15.0 if quick else 60.0)
    args.bare_seconds = args.bare_seconds or (5.0 if quick else 10.0)
    args.embedded_sends = args.embedded_sends or (200 if quick else 600)
    args.bulk = (2000 if quick else 10000) if args.bulk is None else args.bulk
    args.budget = args.budget or (20.0 if quick else 60.0)
    if args.sessions > 10 * SESSIONS_PER_ACCOUNT * 10 or args.sessions < 1:
        raise SystemExit("--sessions: 1 to 1500")
    for prefix in (PREFIX_EMBEDDED, PREFIX_SENDS, PREFIX_KILL, PREFIX_BULK):
        numbers_check(bench_numbers(prefix, 3))

    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor or `timeout` stops everything as Ctrl-C does
    run_start = time.monotonic()
    out(f"wagate send pipeline benchmark, {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs)")
    out(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bench = Bench(Path(tempfile.mkdtemp(prefix="wagate-pipeline-")))
    embedded = production = bulk = crash = None
    try:
        with LoadProcess() as loads:
            with _phase("servers: PostgreSQL, Redis, the bare baseline's gunicorn"):
                bench.start_servers()
                bench.start_bare()
            if not args.no_embedded:
                embedded = embedded_phase(bench, loads, args)
            production = production_phase(bench, loads, args)
            if args.kill:
                with _phase("production: kill -9 under load"):
                    crash = kill_phase(bench, production.target, loads, max(args.seconds / 2, 15.0), budget=120.0)
            if args.bulk:
                with _phase(f"production: {args.bulk:,}-recipient bulk"):
                    bulk = bulk_phase(
                        production.target, args.bulk, production_cpu(bench, production.target), budget=1.5 * args.budget
                    )
    except KeyboardInterrupt:
        out("interrupted: stopping every process")
        raise SystemExit(130) from None
    finally:
        if production is not None:
            production.target.close()
        bench.close(args.keep_logs)
    report(args, production.bare, production.bare_cpu, embedded, production.flow, bulk, crash)
    out(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out(f"total benchmark time {time.monotonic() - run_start:.0f} s")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    start = time.monotonic()
    out(f"  {name} ...")
    yield
    out(f"  {name}: {time.monotonic() - start:.1f} s")


def embedded_phase(bench: Bench, loads: LoadProcess, args) -> Flow:
    with _phase("embedded default (python app.py)"):
        target = bench.start_embedded(args.bulk)
        target.register(1)
        target.pair(args.embedded_sessions)
        cpu = Cpu({"embedded": bench.cpu("embedded")})
        load = Load(
            target.port, target.send_targets(), PREFIX_EMBEDDED, args.connections, args.budget, args.embedded_sends
        )
        outcome = flow(target, loads, load, cpu, args.budget)
        bench.stop("embedded")
    return outcome


@dataclass
class ProductionRun:
    target: Production
    flow: Flow
    bare: LoadResult
    bare_cpu: float


def production_cpu(bench: Bench, target: Production) -> Cpu:
    target.sql("SELECT 1")  # the benchmark's own connection, open before the first reading
    roles = {role: bench.cpu(role) for role in ("web", "worker", "engine-host", "postgres", "redis")}
    postgres = roles["postgres"]
    roles["postgres"] = lambda: postgres() - process_cpu(target.db_pid)
    return Cpu(roles)


def production_phase(bench: Bench, loads: LoadProcess, args) -> ProductionRun:
    with _phase("production stack: migrate, web, worker, engine host"):
        target = bench.start_production(args.bulk)
    with _phase(f"production: {args.sessions} sessions paired"):
        accounts = math.ceil(args.sessions / SESSIONS_PER_ACCOUNT)
        target.register(accounts + 1)  # the last one sends the bulk, from a session of its own
        target.pair(args.sessions)
        target.pair(1, first_account=accounts)
        target.bulk_session = target.sessions.pop()
    with _phase("bare baseline"):
        bare_cpu = Cpu({"bare": bench.cpu("bare")})
        bare = loads.run(Load(bench.bare_port, [("/ping", "")], PREFIX_SENDS, args.connections, args.bare_seconds))
        bare_seconds = bare_cpu.spent()["bare"]
        bench.stop("bare")
    with _phase(f"production: sends for {args.seconds:.0f} s, then until read"):
        cpu = production_cpu(bench, target)
        load = Load(target.port, target.send_targets(), PREFIX_SENDS, args.connections, seconds=args.seconds)
        outcome = flow(target, loads, load, cpu, args.budget)
    return ProductionRun(target, outcome, bare, bare_seconds)


if __name__ == "__main__":
    main()
