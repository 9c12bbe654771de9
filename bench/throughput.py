"""Throughput of the embedded gateway, next to bare Flask and bare RQ baselines measured in the same run.

    python -m bench.throughput [--sends 500] [--batch 10000] [--jobs 2000] [--requests 5000]
                               [--budget 165] [--profile] [--sql]

Everything runs in this one process, as in `python app.py` and the tests: SQLite in a
temporary DATA_DIR, fakeredis, the RQ worker, scheduler and engine host as threads, the
simulator engine. It measures:

* single sends: `POST /api/sessions/{id}/send` through the Flask test client with
  SEND_WAIT_SECONDS=0, so the route answers 202 once the message is stored and enqueued
  (acceptance rate), and the time until every one of them reached `sent` or beyond;
* a bulk batch: `POST /api/whatsapp/bulk-send` with distinct valid numbers and delay 0,
  then the time until the batch is `finished`;
* baselines: RQ no-op jobs on a fakeredis queue with the JSON serializer and the
  project's ThreadWorker, and a one-route Flask app hit through its test client.

The whole run keeps to `--budget` seconds: a batch still running when it is spent is
reported with its partial rate (recipients settled / seconds). `--profile` samples every
thread's stack during the gateway phases and prints where the time goes; `--sql` times the
gateway's SQL statements and commits by thread. Not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import base64
import collections
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

NOOP_JOB = "bench.throughput.noop"
TEXT = "Benchmark message: hello from wagate"
REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def noop(n: int) -> int:
    """The bare RQ job: does nothing (importable by name, as the app's jobs are)."""
    return n


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def bench_numbers(prefix: str, count: int) -> list[str]:
    """Distinct valid Indian mobile numbers. They end in 1: the simulator fails numbers that
    end in 0000 ("not on WhatsApp") and never reads those ending in 9."""
    if count > 10**6:
        raise SystemExit("at most 1,000,000 numbers per prefix")
    return [f"{prefix}{i:06d}1" for i in range(count)]


def numbers_check(numbers: list[str]) -> None:
    from services.platform.phones import phone_normalize

    bad = [number for number in numbers if phone_normalize(number) != number]
    if bad or len(set(numbers)) != len(numbers):
        raise SystemExit(f"benchmark numbers do not normalise to themselves or repeat: {bad[:5]}")


# -- baselines ------------------------------------------------------------------------------


def bare_flask(requests: int) -> dict:
    """A one-route Flask app answering a small JSON, through its test client."""
    from flask import Flask, jsonify, request

    app = Flask("bench-bare")

    @app.post("/ping")
    def ping():
        body = request.get_json()
        return jsonify(success=True, to=body["to"], status="queued"), 202

    client = app.test_client()
    payload = {"to": "919876543211", "message": TEXT}
    start = time.perf_counter()
    codes = collections.Counter(client.post("/ping", json=payload).status_code for _ in range(requests))
    elapsed = time.perf_counter() - start
    if codes != {202: requests}:
        raise SystemExit(f"bare Flask route answered {dict(codes)}")
    return {"count": requests, "seconds": elapsed, "rate": requests / elapsed}


def bare_rq(jobs: int) -> dict:
    """No-op jobs on the app's kind of queue: fakeredis, JSON serializer, ThreadWorker in a thread."""
    import fakeredis
    from rq import Queue
    from rq.job import JobStatus
    from rq.serializers import JSONSerializer

    from jobs.worker import ThreadWorker

    connection = fakeredis.FakeStrictRedis(server=fakeredis.FakeServer())
    queue = Queue("bench-noop", connection=connection, serializer=JSONSerializer)
    worker = ThreadWorker([queue], connection=connection, serializer=JSONSerializer)
    thread = threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"}, name="bench-rq", daemon=True)
    thread.start()
    wait_until(lambda: worker.get_state() in ("idle", "busy"), timeout=5)
    try:
        start = time.perf_counter()
        last = None
        for i in range(jobs):
            # The same options as the app's send jobs (services.hosts.calls.message_enqueue).
            last = queue.enqueue(NOOP_JOB, i, job_id=f"noop-{i}", result_ttl=600, failure_ttl=86400)
        enqueued = time.perf_counter() - start
        if not wait_until(lambda: last.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED), 300, 0.01):
            raise SystemExit("bare RQ jobs did not finish within 300 s")
        elapsed = time.perf_counter() - start
        finished, failed = queue.finished_job_registry.count, queue.failed_job_registry.count
        if finished != jobs or failed:
            raise SystemExit(f"bare RQ: {finished} finished, {failed} failed of {jobs}")
    finally:
        worker.stop()
        thread.join(timeout=5)
    return {"count": jobs, "seconds": elapsed, "rate": jobs / elapsed, "enqueue_rate": jobs / enqueued}


# -- the gateway ----------------------------------------------------------------------------


def decode_qr(data_url: str) -> str:
    """What a phone camera reads from the `data:image/png;base64,...` QR (as tests/conftest.py does)."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image)
    if not results:
        raise SystemExit("no QR code found in the session's QR image")
    return results[0].text


class Gateway:
    """create_app on a temporary SQLite DATA_DIR, migrated, with the embedded runtime, one
    Enterprise account and one session paired by decoding its QR, as tests/conftest.py does."""

    def __init__(self, data_dir: Path, *, batch: int, log_level: str) -> None:
        from flask_migrate import upgrade

        from app import MIGRATIONS_DIR, create_app
        from roles.runtime import EmbeddedRuntime

        self.app = create_app(
            {
                "DATA_DIR": str(data_dir),
                "DATABASE_URL": "",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'bench.db'}",
                "REDIS_URL": "",
                "RATELIMIT_STORAGE_URI": "memory://",
                "WA_ENGINE": "simulator",
                "LOG_LEVEL": log_level,
                # Measure acceptance: the send route answers 202 as soon as the message is queued.
                "SEND_WAIT_SECONDS": 0.0,
                "BULK_WAIT_SECONDS": 0.0,
                "BULK_MIN_DELAY_MS": 0,
                "BULK_MAX_CONTACTS": max(batch, 10000),
                "MAX_CONTENT_LENGTH": max(1024 * 1024, 64 * batch),
                "API_RATE_LIMIT": "1000000 per 15 minutes",
                "AUTH_RATE_LIMIT": "1000000 per 15 minutes",
                "SIMULATOR_RECEIPT_SECONDS": 0.05,
                # The machinery's throughput, not a safe pace: the send governor lets every
                # message go as soon as it is queued (bench.governor measures its own cost).
                "PACE_MIN_GAP_SECONDS": 0.0,
                "PACE_JITTER_SECONDS": 0.0,
                "PACE_PER_MINUTE": 10**9,
                "PACE_PER_DAY": 10**9,
                "PACE_WARMUP": [],
                "GOVERNOR_MAX_COLD_PER_DAY": 0,
            }
        )
        logging.getLogger().setLevel(log_level)
        with self.app.app_context():
            upgrade(directory=MIGRATIONS_DIR)
        logging.getLogger().setLevel(log_level)  # alembic's env may have changed it
        self.runtime = EmbeddedRuntime(self.app)
        self.runtime.start()
        self.client = self.app.test_client()
        self.headers = self._account()
        self.session_id = self._paired_session()

    def _account(self) -> dict:
        email = "bench@example.com"
        response = self.client.post("/api/register", json={"email": email, "password": PASSWORD})
        if response.status_code != 201:
            raise SystemExit(f"register: {response.status_code} {response.get_json()}")
        result = self.app.test_cli_runner().invoke(args=["users", "set-plan", email, "enterprise"])
        if result.exit_code != 0:
            raise SystemExit(f"users set-plan: {result.output}")
        return {"Authorization": f"Bearer {response.get_json()['token']}"}

    def _paired_session(self) -> str:
        created = self.client.post("/api/sessions", json={"name": "Bench"}, headers=self.headers).get_json()
        session_id = created["sessionId"]
        qr = self.client.get(f"/api/sessions/{session_id}/qr", headers=self.headers).get_json()
        url = decode_qr(qr["qrCode"])
        response = self.client.post(urlsplit(url).path, json={"phone": "919876543210"})
        if response.status_code not in (200, 202):
            raise SystemExit(f"pairing: {response.status_code} {response.get_json()}")

        def connected() -> bool:
            body = self.client.get(f"/api/sessions/{session_id}", headers=self.headers).get_json()
            return body.get("status") == "connected"

        if not wait_until(connected, timeout=15, interval=0.1):
            raise SystemExit("the session did not connect")
        return session_id

    def query(self, fn):
        """Run fn() in a fresh app context (and so a fresh database transaction)."""
        with self.app.app_context():
            return fn()

    def settled(self, *, batch_id: str | None) -> tuple[int, int]:
        """(sent or beyond, failed) outbound messages of one batch, or of the single sends."""
        from sqlalchemy import func, select

        from extensions import db
        from models import Message, MessageStatus
        from services.messaging.bulk import SENT_LIKE

        def count() -> tuple[int, int]:
            where = Message.batch_id.is_(None) if batch_id is None else Message.batch_id == batch_id
            rows = dict(
                db.session.execute(
                    select(Message.status, func.count())
                    .where(where, Message.direction == "outbound")
                    .group_by(Message.status)
                ).all()
            )
            return sum(rows.get(s, 0) for s in SENT_LIKE), rows.get(MessageStatus.FAILED, 0)

        return self.query(count)

    def quiesce(self, timeout: float = 60.0) -> bool:
        """Wait for the engine host to go idle: no events, no pending simulator receipts, no sends."""
        from services.governor.queue import SendQueue

        host = self.runtime.engine_host

        def idle() -> bool:
            receipts = getattr(host.engine, "_receipts", [])
            lines = list(host.senders.lines.values())
            connection = self.app.extensions["wagate.redis"]
            waiting = sum(SendQueue(connection, line.session_id).depth() for line in lines)
            return host.events.qsize() == 0 and not receipts and waiting == 0

        calm = 0

        def calm_for_a_while() -> bool:
            nonlocal calm
            calm = calm + 1 if idle() else 0
            return calm >= 5

        return wait_until(calm_for_a_while, timeout=timeout, interval=0.1)

    def close(self) -> None:
        from extensions import db

        self.runtime.stop()
        with self.app.app_context():
            db.engine.dispose()


def single_sends(gateway: Gateway, count: int, timeout: float) -> dict:
    numbers = bench_numbers("91986", count)
    numbers_check(numbers)
    url = f"/api/sessions/{gateway.session_id}/send"
    codes: collections.Counter[int] = collections.Counter()
    start = time.perf_counter()
    for number in numbers:
        codes[gateway.client.post(url, json={"to": number, "message": TEXT}, headers=gateway.headers).status_code] += 1
    accepted_seconds = time.perf_counter() - start
    if set(codes) - {200, 202}:
        raise SystemExit(f"single sends answered {dict(codes)}")
    state = {"sent": 0, "failed": 0}

    def all_settled() -> bool:
        state["sent"], state["failed"] = gateway.settled(batch_id=None)
        return state["sent"] + state["failed"] >= count

    done = wait_until(all_settled, timeout=timeout, interval=0.1)
    e2e_seconds = time.perf_counter() - start
    settled = state["sent"] + state["failed"]
    return {
        "count": count,
        "codes": dict(codes),
        "accept_seconds": accepted_seconds,
        "accept_rate": count / accepted_seconds,
        "e2e_seconds": e2e_seconds,
        "e2e_rate": settled / e2e_seconds,
        "sent": state["sent"],
        "failed": state["failed"],
        "complete": done,
    }


@dataclass
class BulkResult:
    count: int
    post_seconds: float = 0.0
    e2e_seconds: float = 0.0
    sent: int = 0
    failed: int = 0
    finished: bool = False
    timeline: list[tuple[float, int]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return (self.sent + self.failed) / self.e2e_seconds if self.e2e_seconds else 0.0


def bulk_batch(gateway: Gateway, count: int, timeout: float) -> BulkResult:
    from extensions import db
    from models import BulkBatch

    numbers = bench_numbers("91987", count)
    numbers_check(numbers)
    result = BulkResult(count)
    payload = {"contacts": numbers, "message": TEXT, "delay": 0}
    start = time.perf_counter()
    response = gateway.client.post("/api/whatsapp/bulk-send", json=payload, headers=gateway.headers)
    result.post_seconds = time.perf_counter() - start
    if response.status_code not in (200, 202):
        raise SystemExit(f"bulk-send answered {response.status_code}: {str(response.get_json())[:300]}")
    batch_id = response.get_json()["batchId"]
    deadline = start + timeout
    next_sample = start
    while True:
        now = time.perf_counter()
        status = gateway.query(lambda: db.session.get(BulkBatch, batch_id).status)
        if status == "finished" or now >= deadline:
            result.finished = status == "finished"
            result.e2e_seconds = time.perf_counter() - start
            break
        if now >= next_sample:
            sent, failed = gateway.settled(batch_id=batch_id)
            result.timeline.append((now - start, sent + failed))
            next_sample += 1.0
        time.sleep(0.2)  # every poll takes SQLite's shared lock too: keep them rare
    if result.finished:  # the documented report, through the API, for the final counts
        report = gateway.client.get(f"/api/whatsapp/bulk-send/{batch_id}", headers=gateway.headers).get_json()
        result.sent, result.failed = report["sent"], report["failed"]
    else:
        result.sent, result.failed = gateway.settled(batch_id=batch_id)
    result.timeline.append((result.e2e_seconds, result.sent + result.failed))
    return result


# -- an optional sampling profiler ----------------------------------------------------------

# Innermost Python frames of a thread that is waiting, not working (time.sleep and lock waits are C).
IDLE_LEAVES = {
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("selectors.py", "select"),
    ("scheduler.py", "work"),  # RQScheduler sleeps between its rounds
}


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if filename.startswith(str(REPO)):
        return str(Path(filename).relative_to(REPO))
    return Path(filename).name


class StackSampler:
    """Samples every thread's stack every few ms. Per thread role it counts the project
    functions on busy stacks (cumulative) and the innermost frames (where the time goes)."""

    def __init__(self, *, enabled: bool = True, interval: float = 0.005) -> None:
        self.enabled = enabled
        self.interval = interval
        self.samples: dict[str, int] = collections.Counter()
        self.busy: dict[str, int] = collections.Counter()
        self.functions: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> StackSampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()

    @staticmethod
    def _role(name: str) -> str:
        role = name.split(":", 1)[0]
        return "rq-job-timer" if role.startswith("Thread-") else role

    def _run(self) -> None:
        me = threading.get_ident()
        bench_dir = str(Path(__file__).resolve().parent)
        while not self._stop.wait(self.interval):
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                role = self._role(names.get(ident, "?"))
                self.samples[role] += 1
                code = frame.f_code
                if (Path(code.co_filename).name, code.co_name) in IDLE_LEAVES or code.co_filename.startswith(bench_dir):
                    continue  # waiting (the benchmark's own frames only sleep and poll)
                self.busy[role] += 1
                self.leaves[role][f"{_short(code.co_filename)}:{code.co_name}"] += 1
                seen = set()
                while frame is not None:
                    filename = frame.f_code.co_filename
                    if filename.startswith(str(REPO)) and "/.venv/" not in filename and "/bench/" not in filename:
                        where = f"{_short(filename)}:{frame.f_code.co_name}"
                        if where not in seen:
                            seen.add(where)
                            self.functions[role][where] += 1
                    frame = frame.f_back

    def report(self, title: str, top: int = 8) -> None:
        if not self.enabled:
            return
        out(f"\nProfile ({title}): per thread role, the share of samples it was busy (running or")
        out("waiting for the GIL), project functions on its busy stacks, and its innermost frames")
        for role, busy in sorted(self.busy.items(), key=lambda item: -item[1]):
            if busy < 20:
                continue
            out(f"  {role}: busy in {100 * busy / self.samples[role]:.0f}% of {self.samples[role]} samples")
            for where, hits in self.functions[role].most_common(top):
                out(f"      {100 * hits / busy:5.1f}%  {where}")
            out("    innermost:")
            for where, hits in self.leaves[role].most_common(5):
                out(f"      {100 * hits / busy:5.1f}%  {where}")


class SqlTimer:
    """Times the gateway's SQL statements and commits (with their lock waits), by thread role."""

    def __init__(self) -> None:
        self.stats: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
        self._lock = threading.Lock()

    def attach(self, gateway: Gateway) -> None:
        from sqlalchemy import event

        from extensions import db

        with gateway.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        dialect = engine.dialect
        do_commit = dialect.do_commit

        def timed_commit(dbapi_connection) -> None:
            start = time.perf_counter()
            do_commit(dbapi_connection)
            self._add("COMMIT", time.perf_counter() - start)

        dialect.do_commit = timed_commit

    def _add(self, what: str, seconds: float) -> None:
        role = StackSampler._role(threading.current_thread().name)
        with self._lock:
            entry = self.stats[(role, what)]
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        words = statement.split()
        verb = words[0].upper()
        table = next((words[i + 1] for i, word in enumerate(words[:-1]) if word in ("FROM", "INTO")), "")
        self._add(f"{verb} {words[1] if verb == 'UPDATE' else table}", seconds)

    def report(self, top: int = 25) -> None:
        out("\nSQL time by thread role (statement time includes waiting for SQLite's lock)")
        out(f"  {'role':<20}{'statement':<28}{'count':>7}{'total s':>9}{'mean ms':>9}{'max ms':>9}")
        for (role, what), (count, total, longest) in sorted(self.stats.items(), key=lambda item: -item[1][1])[:top]:
            out(f"  {role:<20}{what[:27]:<28}{count:>7}{total:>9.2f}{1000 * total / count:>9.2f}{1000 * longest:>9.1f}")


# -- the report -----------------------------------------------------------------------------


def _remove(path: Path) -> None:
    """Delete the temporary DATA_DIR; a send line still finishing its last message may write late."""
    for _ in range(20):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.5)
    out(f"  (could not remove {path})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=500, help="single sends (default 500)")
    parser.add_argument("--batch", type=int, default=10000, help="bulk batch recipients (default 10000)")
    parser.add_argument("--jobs", type=int, default=2000, help="bare RQ no-op jobs (default 2000)")
    parser.add_argument("--requests", type=int, default=5000, help="bare Flask requests (default 5000)")
    parser.add_argument(
        "--budget",
        type=float,
        default=165.0,
        help="seconds for the whole run (default 165); a batch still running when it is spent is "
        "reported with its partial rate",
    )
    parser.add_argument("--profile", action="store_true", help="sample thread stacks during the gateway phases")
    parser.add_argument("--sql", action="store_true", help="time SQL statements and commits by thread role")
    parser.add_argument("--log-level", default="ERROR", help="the app's LOG_LEVEL (default ERROR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level)
    if logging.getLevelName(args.log_level.upper()) > logging.INFO:
        logging.disable(logging.INFO)  # alembic's and RQ's INFO lines would clutter the figures
    run_start = time.perf_counter()
    deadline = run_start + args.budget

    def remaining(reserve: float = 0.0) -> float:
        return max(5.0, deadline - time.perf_counter() - reserve)

    out(f"wagate throughput benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, all in one process)")
    out(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    flask_base = bare_flask(args.requests)
    out(f"  bare Flask route: {args.requests} requests in {flask_base['seconds']:.2f} s")
    rq_base = bare_rq(args.jobs)
    out(f"  bare RQ no-op:    {args.jobs} jobs in {rq_base['seconds']:.2f} s")

    profiles: list[tuple[str, StackSampler]] = []
    sql = SqlTimer() if args.sql else None
    data_dir = Path(tempfile.mkdtemp(prefix="wagate-bench-"))
    try:
        gateway = Gateway(data_dir, batch=args.batch, log_level=args.log_level)
        try:
            if sql:
                sql.attach(gateway)
            with StackSampler(enabled=args.profile) as sampler:
                single = single_sends(gateway, args.sends, timeout=remaining(reserve=60))
            profiles.append(("single sends", sampler))
            settled = single["sent"] + single["failed"]
            out(
                f"  single sends:     {args.sends} accepted in {single['accept_seconds']:.2f} s, "
                f"{settled} sent or failed after {single['e2e_seconds']:.2f} s "
                f"({single['sent']} sent, {single['failed']} failed)"
            )
            if not gateway.quiesce(timeout=min(30.0, remaining(reserve=60))):
                out("  (the engine host was still busy with the single sends' receipts; going on)")
            with StackSampler(enabled=args.profile) as sampler:
                bulk = bulk_batch(gateway, args.batch, timeout=remaining(reserve=10))
            profiles.append(("bulk batch", sampler))
            state = "finished" if bulk.finished else "NOT finished (time budget spent)"
            out(
                f"  bulk batch:       {args.batch} recipients, POST took {bulk.post_seconds:.2f} s, "
                f"{state} after {bulk.e2e_seconds:.2f} s ({bulk.sent} sent, {bulk.failed} failed)"
            )
        finally:
            gateway.close()
    finally:
        _remove(data_dir)

    for title, sampler in profiles:
        sampler.report(title)
    if sql:
        sql.report()
    partial_bulk = "" if bulk.finished else f"partial: {bulk.sent + bulk.failed} of {args.batch}"
    rows = [
        ("bare Flask route (test client)", f"{flask_base['rate']:.0f} req/s", f"{args.requests} requests"),
        ("bare RQ no-op job (enqueue+run)", f"{rq_base['rate']:.0f} jobs/s", f"{args.jobs} jobs"),
        ("  of which enqueue only", f"{rq_base['enqueue_rate']:.0f} jobs/s", ""),
        ("single send, accepted (202)", f"{single['accept_rate']:.1f} msg/s", f"{args.sends} POSTs"),
        ("single send, end to end (sent)", f"{single['e2e_rate']:.1f} msg/s", "" if single["complete"] else "partial"),
        ("bulk batch POST (store + enqueue)", f"{args.batch / bulk.post_seconds:.0f} rcpt/s", "one request"),
        ("bulk batch, end to end (finished)", f"{bulk.rate:.1f} msg/s", partial_bulk),
    ]
    ratios = [
        ("single-send acceptance / bare Flask route", single["accept_rate"] / flask_base["rate"]),
        ("bulk end-to-end / bare RQ no-op job", bulk.rate / rq_base["rate"]),
        ("single-send end-to-end / bare RQ no-op job", single["e2e_rate"] / rq_base["rate"]),
    ]
    out("\nResults")
    width = max(len(name) for name, *_ in rows + ratios) + 2
    for name, value, note in rows:
        out(f"  {name:<{width}}{value:>16}   {note}")
    out("Ratios")
    for name, ratio in ratios:
        out(f"  {name:<{width}}{ratio:>16.4f}")
    out("Bulk progress (settled recipients by elapsed seconds)")
    step = max(1, len(bulk.timeline) // 12)
    marks = dict(bulk.timeline[::step] + bulk.timeline[-1:])
    out("  " + "  ".join(f"{t:.0f}s:{n}" for t, n in marks.items()))
    out(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out(f"Total benchmark time {time.perf_counter() - run_start:.1f} s")


if __name__ == "__main__":
    main()
