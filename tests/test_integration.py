"""The production topology, end to end, with real processes on loopback.

One module-scoped stack starts a real redis-server, a real PostgreSQL cluster, runs the
migrations, then the three roles as separate processes: gunicorn (web), `flask worker`
and `flask engine-host --id host-a`. The tests then drive it only from outside, over
HTTP and with a real Socket.IO client, the way a customer would:

- pairing a session by decoding its QR image and "scanning" it;
- Socket.IO events that the engine host emits in *its* process reach the browser through
  Redis and the web process (cross-process emits), and only the session owner's clients;
- a session survives `kill -9` of its engine host without a new scan;
- a 1,000-recipient bulk send survives `kill -9` of the worker mid-batch: restarted, it
  finishes the batch with exactly one send per recipient.

Every process logs to a file in the stack's temp dir; any failure prints their tails.
Needs `redis-server` and PostgreSQL's `initdb`/`postgres` binaries: the module is
skipped without them, unless WAGATE_REQUIRE_INTEGRATION=1 (CI), where that is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers import app_config, without_cursor

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "integration-test-secret-key-not-for-production-use-0123456789"
DB_USER = "wagate"
DB_NAME = "wagate"
HOST_ID = "host-a"
PHONE = "919876543210"
PASSWORD = "correct-horse-battery-staple"
HTTP_TIMEOUT = 15
STARTUP_SECONDS = 40
EVENT_SECONDS = 15
LOG_TAIL_LINES = 40
CAROL_PHONE = "919812345678"
BULK_CONTACTS = 1000
# The engine host's own work per send (tens of ms) sets the pace more than this delay, and
# the scheduler runs a chunk's dispatch once a second at most: ~10 s to dispatch them all.
BULK_DELAY_MS = 5
# Kill the worker once this many are sent and dispatched: the worker dispatches 100 at a
# time and schedules the next 100 (RQ's scheduler, in the worker), so 200 dispatched means
# its scheduled chain is under way, with most recipients not yet handed to the engine host.
BULK_KILL_SENT = 50
BULK_KILL_DISPATCHED = 200
# After the restart the batch must keep moving: no new settled recipient for this long is a
# stall (the restarted worker takes over dispatching within ~20 s); the whole wait is capped.
BULK_STALL_SECONDS = 30
METRICS_TOKEN = "integration-metrics-token"
BULK_FINISH_SECONDS = 180
# A throwaway cluster: loopback only, and durability traded for speed.
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": 100,
    "shared_buffers": "16MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


# -- finding the binaries -------------------------------------------------------------------


def _redis_server() -> str | None:
    return shutil.which("redis-server")


def _postgres_bin() -> Path | None:
    """The bin dir of the newest PostgreSQL with both initdb and postgres in it."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.insert(0, str(Path(initdb).resolve().parent))
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "postgres").exists():
            return path
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit()) or (0,)


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("WAGATE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"WAGATE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # not up yet: remember why, try again
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# -- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    log_file: IO[bytes]
    stop_signal: int = signal.SIGTERM

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        # Each child leads its own process group (start_new_session), so this reaches
        # gunicorn's worker and rq's work horses too, and nothing we did not start.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 10) -> None:
        try:
            if self.running:
                self.signal_group(self.stop_signal)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            self.signal_group(signal.SIGKILL)  # whatever is left of the group
            self.popen.wait(timeout=timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        """kill -9, as a crash would: no cleanup in the process."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    base_url: str = ""
    redis_url: str = ""
    pg_bin: Path | None = None
    pg_port: int = 0
    web_port: int = 0
    pg_user: tuple[int, int] | None = None  # (uid, gid) to run PostgreSQL as, when we are root
    _log_count: int = 0

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_open(self, name: str) -> tuple[Path, IO[bytes]]:
        self._log_count += 1
        path = self.logs / f"{self._log_count:02d}-{name}.log"
        return path, open(path, "wb")  # noqa: SIM115 (closed by Process.stop or run())

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        stop_signal: int = signal.SIGTERM,
        as_pg_user: bool = False,
    ) -> Process:
        if name in self.processes and self.processes[name].running:
            raise RuntimeError(f"{name} is already running")
        log_path, log_file = self.log_open(name)
        try:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env if env is not None else self.env,
                cwd=cwd,
                start_new_session=True,
                **self._user_kwargs(as_pg_user),
            )
        except BaseException:
            log_file.close()
            raise
        process = Process(name, popen, log_path, log_file, stop_signal)
        # Keep an old (stopped) incarnation's log visible under another key.
        if name in self.processes:
            self.processes[f"{name}#{self._log_count}"] = self.processes.pop(name)
        self.processes[name] = process
        return process

    def run(self, name: str, args: list[str], *, env=None, cwd: Path = REPO, as_pg_user=False, timeout=60) -> None:
        """Run a command to completion; fail with its output if it does not succeed."""
        log_path, log_file = self.log_open(name)
        with log_file:
            result = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env if env is not None else self.env,
                cwd=cwd,
                timeout=timeout,
                check=False,
                **self._user_kwargs(as_pg_user),
            )
        if result.returncode != 0:
            output = log_path.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{name} exited with {result.returncode}:\n{output}")

    def _user_kwargs(self, as_pg_user: bool) -> dict:
        if not as_pg_user or self.pg_user is None:
            return {}
        uid, gid = self.pg_user
        return {"user": uid, "group": gid, "extra_groups": []}

    def assert_running(self, *names: str) -> None:
        for name in names or [n for n in self.processes if "#" not in n]:
            process = self.processes[name]
            if not process.running:
                raise AssertionError(f"process {name} exited early with code {process.popen.returncode}")

    def stop_all(self) -> None:
        errors = []
        # Clients of the database and of Redis first, then the servers.
        order = sorted(self.processes.values(), key=lambda p: p.name.startswith(("postgres", "redis", "sentinel")))
        for process in order:
            try:
                process.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{process.name}: {exc!r}")
        if errors:
            raise RuntimeError("could not stop: " + "; ".join(errors))

    def tails(self) -> str:
        parts = [f"===== {name} ({p.log_path}) =====\n{p.tail()}" for name, p in self.processes.items()]
        return "\n".join(parts)

    @contextlib.contextmanager
    def diagnostics(self) -> Iterator[None]:
        """Turn any failure inside into one that shows the tail of every process's log."""
        try:
            yield
        except Exception as exc:
            exc.add_note(f"\nprocess logs (in {self.logs}):\n{self.tails()}")
            raise

    # -- the roles ----------------------------------------------------------------------

    def redis_start_again(self) -> None:
        """Start redis-server again, as it was started, after it stopped or was killed (with
        nothing of its data: it keeps none on disk), and wait until it answers."""
        import redis

        self.start("redis", list(self.processes["redis"].popen.args))

        def ping() -> bool:
            with redis.Redis.from_url(self.redis_url, socket_timeout=1) as client:
                return client.ping()

        wait_until(ping, 15, "redis-server to answer again")

    def postgres_stop(self) -> None:
        """Stop PostgreSQL with a "fast" shutdown (SIGINT: its clients are cut off)."""
        self.processes["postgres"].stop(timeout=30)

    def postgres_start_again(self) -> None:
        """Start PostgreSQL again on its data, as it was started, and wait until it answers."""
        import psycopg

        pg_dir = self.root / "pg"
        pg_env = {"PATH": f"{self.pg_bin}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(pg_dir), "TZ": "UTC"}
        args = list(self.processes["postgres"].popen.args)
        self.start("postgres", args, env=pg_env, cwd=pg_dir, stop_signal=signal.SIGINT, as_pg_user=True)
        conninfo = f"host=127.0.0.1 port={self.pg_port} user={DB_USER} dbname={DB_NAME} connect_timeout=2"

        def answers() -> bool:
            with psycopg.connect(conninfo) as connection:
                return connection.execute("SELECT 1").fetchone() == (1,)

        wait_until(answers, 30, "PostgreSQL to accept connections again")

    def start_redis(self, redis_server: str) -> None:
        import redis

        port = _free_port()
        data = self.root / "redis"
        data.mkdir()
        self.start(
            "redis",
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
                "--daemonize",
                "no",
            ],
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"

        def ping() -> bool:
            self.assert_running("redis")
            with redis.Redis.from_url(self.redis_url, socket_timeout=1) as client:
                return client.ping()

        wait_until(ping, 15, "redis-server to answer PING")

    def start_postgres(self, pg_bin: Path) -> None:
        import psycopg

        self.pg_bin = pg_bin
        pg_dir = self.root / "pg"
        pg_dir.mkdir()
        sockets = pg_dir / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            self.pg_user = (account.pw_uid, account.pw_gid)
            self.root.chmod(0o755)  # let that user reach pg/ (the logs stay written by us)
            for path in (pg_dir, sockets):
                os.chown(path, *self.pg_user)
        pg_env = {"PATH": f"{pg_bin}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(pg_dir), "TZ": "UTC"}
        data = pg_dir / "data"
        self.run(
            "initdb",
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                DB_USER,
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            env=pg_env,
            cwd=pg_dir,
            as_pg_user=True,
        )
        self.pg_port = _free_port()
        self.start(
            "postgres",
            [str(pg_bin / "postgres"), "-D", str(data), "-p", str(self.pg_port), "-k", str(sockets)]
            + [arg for name, value in PG_SETTINGS.items() for arg in ("-c", f"{name}={value}")],
            env=pg_env,
            cwd=pg_dir,
            stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for clients
            as_pg_user=True,
        )
        admin = f"host=127.0.0.1 port={self.pg_port} user={DB_USER} dbname=postgres connect_timeout=2"

        def create_database() -> bool:
            self.assert_running("postgres")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            return True

        wait_until(create_database, 30, "PostgreSQL to accept connections")

    def configure(self) -> None:
        web_port = _free_port()
        self.base_url = f"http://127.0.0.1:{web_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAGATE_", "FLASK_"))}
        for name in (
            "REDIS_SENTINELS",  # the stack's own Redis, not one the environment names
            "ENGINE_HOST_ID",
            "WA_ENGINE",
            "FIRST_USER_IS_ADMIN",
            "DEFAULT_PLAN",
            "PROXY_FIX_X_FOR",
            "AUTH_RATE_LIMIT",
            "QR_REFRESH_SECONDS",
            "QR_MAX_REFRESHES",
            "JWT_EXPIRES_SECONDS",
        ):
            env.pop(name, None)
        env.update(
            DATABASE_URL=f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.pg_port}/{DB_NAME}",
            REDIS_URL=self.redis_url,
            SECRET_KEY=SECRET_KEY,
            DATA_DIR=str(self.root / "data"),
            PUBLIC_URL=self.base_url,
            # Bulk sends as fast as the test asks (the default floor is 1 s per message),
            # and a bulk-send request answers 202 at once instead of waiting for the batch.
            BULK_MIN_DELAY_MS="0",
            BULK_WAIT_SECONDS="1",
            # The send governor's safe pace (seconds between messages, a warm-up of 50 on the
            # first day, a pause after 300 cold messages) would make the 1000-recipient batch
            # take days: these tests are about durability, so sessions send as fast as they can.
            PACE_MIN_GAP_SECONDS="0",
            PACE_JITTER_SECONDS="0",
            PACE_PER_MINUTE="1000000",
            PACE_PER_DAY="1000000",
            PACE_WARMUP="",
            GOVERNOR_MAX_COLD_PER_DAY="0",
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        self.env = env
        self.web_port = web_port

    def migrate(self) -> None:
        self.run("migrate", [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"])

    def start_web(self) -> None:
        self.start(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
                "--no-control-socket",
                "wsgi:app",
            ],  # the control socket would live in $HOME
        )

    def start_worker(self) -> None:
        self.start("worker", [str(VENV_BIN / "flask"), "--app", "app", "worker"])

    def start_engine_host(self) -> Process:
        return self.start("engine-host", [str(VENV_BIN / "flask"), "--app", "app", "engine-host", "--id", HOST_ID])

    def flask(self, name: str, *args: str) -> None:
        """Run a `flask --app app ...` operator command against the stack."""
        self.run(name, [str(VENV_BIN / "flask"), "--app", "app", *args])

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Read the stack's database directly (for what the API does not show)."""
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.pg_port} user={DB_USER} dbname={DB_NAME} connect_timeout=5"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def health(self) -> dict:
        import requests

        response = requests.get(f"{self.base_url}/healthz", timeout=HTTP_TIMEOUT)
        return {"status_code": response.status_code, **response.json()}

    def wait_healthy(self) -> dict:
        def healthy() -> dict | None:
            self.assert_running()
            report = self.health()
            alive = report.get("checks", {}).get("engineHosts", {}).get("alive", [])
            return report if report["status_code"] == 200 and HOST_ID in alive else None

        return wait_until(healthy, STARTUP_SECONDS, f"/healthz to be 200 with {HOST_ID} alive", interval=0.2)

    def workers_registered(self) -> bool:
        """`flask worker` on the default queue, and the engine host on its own and the shared one.

        The engine host heartbeats (so /healthz is 200) before its RQ worker registers.
        """
        workers = self.rq_workers()
        queues = {name for names in workers for name in names}
        return ["wagate"] in workers and {f"wagate-engine@{HOST_ID}", "wagate-engine"} <= queues

    def rq_workers(self) -> list[list[str]]:
        """The queue names of each RQ worker registered in Redis."""
        import redis
        from rq import Worker

        with redis.Redis.from_url(self.redis_url) as connection:
            return [worker.queue_names() for worker in Worker.all(connection=connection)]


@contextlib.contextmanager
def stack_started(
    prefix: str, env: dict[str, str] | None = None, *, worker: bool = True, stack_class: type[Stack] = Stack
) -> Iterator[Stack]:
    """The production stack on loopback, for a module's tests: redis-server, PostgreSQL,
    migrations, gunicorn, a worker (unless `worker` is false) and an engine host, with `env`
    added to the roles' settings; everything stopped and removed at the end. A `stack_class`
    may start Redis its own way (tests/test_sentinel.py: behind Sentinels)."""
    redis_server = _redis_server()
    _require(redis_server is not None, "redis-server is not installed (apt-get install redis-server)")
    pg_bin = _postgres_bin()
    _require(pg_bin is not None, "PostgreSQL's initdb/postgres are not installed (apt-get install postgresql)")

    root = Path(tempfile.mkdtemp(prefix=f"wagate-{prefix}-"))
    (root / "logs").mkdir()
    stack = stack_class(root=root)
    try:
        with stack.diagnostics():
            stack.start_redis(redis_server)
            stack.start_postgres(pg_bin)
            stack.configure()
            stack.env.update(env or {})
            stack.migrate()
            stack.start_web()
            if worker:
                stack.start_worker()
            stack.start_engine_host()
            stack.wait_healthy()
            if worker:
                wait_until(stack.workers_registered, STARTUP_SECONDS, "the RQ workers of worker and engine host")
        yield stack
    finally:
        try:
            stack.stop_all()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Each role's metrics: the web's behind METRICS_TOKEN, the worker's and the engine host's on a port each.
    metrics = {
        "METRICS_TOKEN": METRICS_TOKEN,
        "WORKER_METRICS_PORT": str(_free_port()),
        "ENGINE_HOST_METRICS_PORT": str(_free_port()),
    }
    with stack_started("integration", metrics) as started:
        yield started


# -- the API's clients ----------------------------------------------------------------------


class EventLog:
    """Every Socket.IO event one client received, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()

    def record(self, event: str, data: Any = None) -> None:
        with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    def snapshot(self) -> list[tuple[str, Any]]:
        with self._changed:
            return list(self.events)

    def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; got {self._summary()}")

    def _summary(self) -> list:
        return [(name, _session_of(data)) for name, data in self.events]


def _session_of(data: Any) -> str | None:
    return data.get("sessionId") if isinstance(data, dict) else None


def for_session(events: list[tuple[str, Any]], session_id: str, names=("qr", "connected")) -> list[tuple[str, Any]]:
    return [(name, data) for name, data in events if name in names and _session_of(data) == session_id]


@dataclass
class User:
    email: str
    token: str
    events: EventLog
    base_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs):
        import requests

        return requests.request(method, f"{self.base_url}{path}", headers=self.headers, timeout=HTTP_TIMEOUT, **kwargs)


@contextlib.contextmanager
def connected_user(stack: Stack, name: str) -> Iterator[User]:
    """A registered user with a live Socket.IO client recording the events it receives."""
    import requests
    import socketio

    with stack.diagnostics():
        email = f"{name}-{uuid.uuid4().hex[:8]}@wagate-integration.dev"
        response = requests.post(
            f"{stack.base_url}/api/register", json={"email": email, "password": PASSWORD}, timeout=HTTP_TIMEOUT
        )
        assert response.status_code == 201, response.text
        user = User(email=email, token=response.json()["token"], events=EventLog(), base_url=stack.base_url)

    http = requests.Session()  # ours to close: engineio drops its own without closing it
    client = socketio.Client(http_session=http)
    client.on("*", user.events.record)
    try:
        with stack.diagnostics():
            client.connect(stack.base_url, auth={"token": user.token}, wait_timeout=10)
            assert client.connected
        yield user
    finally:
        try:
            client.disconnect()
        finally:
            http.close()


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "alice") as user:
        yield user


@pytest.fixture(scope="module")
def carol(stack: Stack) -> Iterator[User]:
    """A Growth-plan user (bulk messaging), set by the operator command."""
    with connected_user(stack, "carol") as user:
        with stack.diagnostics():
            stack.flask("set-plan", "users", "set-plan", user.email, "growth")
        yield user


@pytest.fixture(scope="module")
def bob(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "bob") as user:
        yield user


def qr_text(data_url: str) -> str:
    """Read the QR code in a PNG data URL, as a phone camera would."""
    import zxingcpp
    from PIL import Image

    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix), data_url[:40]
    with Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :]))) as image:
        image.load()
        codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1, f"expected one QR code in the image, found {len(codes)}"
    return codes[0].text


@dataclass
class Paired:
    session_id: str
    pairing_url: str
    pair_response: dict
    pair_status: int


def pair_session(stack: Stack, user: User, name: str, phone: str) -> Paired:
    """Create a session for `user` and pair it by decoding its QR and "scanning" it."""
    import requests

    response = user.request("POST", "/api/sessions", json={"name": name})
    assert response.status_code == 201, response.text
    session_id = response.json()["sessionId"]

    response = user.request("GET", f"/api/sessions/{session_id}/qr")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["qrCode"], f"no QR code yet: {body}"
    pairing_url = qr_text(body["qrCode"])
    assert pairing_url.startswith(f"{stack.base_url}/sim/pair/{session_id}/"), pairing_url

    response = requests.post(pairing_url, json={"phone": phone}, timeout=HTTP_TIMEOUT)
    assert response.status_code in (200, 202), response.text
    return Paired(session_id, pairing_url, response.json(), response.status_code)


@pytest.fixture(scope="module")
def paired(stack: Stack, alice: User, bob: User) -> Paired:
    """Alice's session, created and paired by scanning its QR (both clients listening)."""
    with stack.diagnostics():
        return pair_session(stack, alice, "integration", PHONE)


def session_status(user: User, session_id: str) -> dict:
    response = user.request("GET", f"/api/sessions/{session_id}/status")
    assert response.status_code == 200, response.text
    return response.json()


# -- the tests ------------------------------------------------------------------------------


def test_healthz_sees_database_redis_and_engine_host(stack: Stack) -> None:
    with stack.diagnostics():
        report = stack.health()
        assert report["status_code"] == 200, report
        assert report["status"] == "ok", report
        checks = report["checks"]
        assert checks["database"] == {"ok": True}, report
        assert checks["queue"] == {"ok": True}, report
        assert checks["engineHosts"]["ok"] is True and HOST_ID in checks["engineHosts"]["alive"], report
        workers = stack.rq_workers()
        assert ["wagate"] in workers, f"no `flask worker` on the default queue: {workers}"
        engine_queues = {name for queues in workers for name in queues}
        assert {f"wagate-engine@{HOST_ID}", "wagate-engine"} <= engine_queues, workers
        stack.assert_running("web", "worker", "engine-host")


def test_every_migration_runs_up_and_down_on_postgresql(stack: Stack, tmp_path: Path) -> None:
    """The SQLite walk of tests/test_migrations.py, on a database of its own in the cluster."""
    import psycopg

    from app import create_app
    from tests.test_migrations import migrations_walk

    admin = f"host=127.0.0.1 port={stack.pg_port} user={DB_USER} dbname=postgres connect_timeout=5"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "wagate_migrations"')
    url = f"postgresql+psycopg://{DB_USER}@127.0.0.1:{stack.pg_port}/wagate_migrations"
    migrations_walk(create_app(app_config(tmp_path, SQLALCHEMY_DATABASE_URI=url)))


# `flask db upgrade` as a node runs it at start, with the app already loaded so that every
# process reaches the migrations at the same moment (argv: its ready file, the start file).
UPGRADE_AT_ONCE = """
import sys, time, traceback
from pathlib import Path
from app import create_app

runner = create_app().test_cli_runner()
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
result = runner.invoke(args=["db", "upgrade"])
print(result.output)
if result.exc_info and result.exit_code:
    traceback.print_exception(*result.exc_info)
sys.exit(result.exit_code)
"""


def test_concurrent_upgrades_wait_for_each_other(stack: Stack, tmp_path: Path) -> None:
    """Every node may run `flask db upgrade` as it starts: five at once on an empty database
    all succeed (the advisory lock in migrations/env.py), and leave it at head with the same
    tables as the stack's own database."""
    import psycopg
    from alembic.script import ScriptDirectory

    admin = f"host=127.0.0.1 port={stack.pg_port} user={DB_USER} dbname=postgres connect_timeout=5"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "wagate_concurrent"')
    url = f"postgresql+psycopg://{DB_USER}@127.0.0.1:{stack.pg_port}/wagate_concurrent"
    env = {**stack.env, "DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
    start = tmp_path / "start"
    ready = [tmp_path / f"ready-{n}" for n in range(5)]
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_AT_ONCE, str(path), str(start)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in ready
    ]
    try:
        wait_until(lambda: all(path.exists() for path in ready), STARTUP_SECONDS, "five loaded apps")
    finally:
        start.touch()
    outputs = [process.communicate(timeout=180)[0] for process in upgrades]
    failed = [
        (process.returncode, output[-2000:])
        for process, output in zip(upgrades, outputs, strict=True)
        if process.returncode
    ]
    assert not failed, failed

    def tables(dbname: str) -> set[str]:
        conninfo = f"host=127.0.0.1 port={stack.pg_port} user={DB_USER} dbname={dbname} connect_timeout=5"
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            return {name for (name,) in rows}

    assert tables("wagate_concurrent") == tables(DB_NAME)
    head = ScriptDirectory(str(REPO / "migrations")).get_current_head()
    conninfo = f"host=127.0.0.1 port={stack.pg_port} user={DB_USER} dbname=wagate_concurrent connect_timeout=5"
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_scanning_the_qr_pairs_the_session(stack: Stack, alice: User, paired: Paired) -> None:
    with stack.diagnostics():
        if paired.pair_status == 200:
            assert paired.pair_response["status"] == "connected", paired.pair_response
            assert paired.pair_response["phone"] == PHONE, paired.pair_response

        def connected() -> dict | None:
            status = session_status(alice, paired.session_id)
            return status if status["status"] == "connected" else None

        status = wait_until(connected, EVENT_SECONDS, "the session to be connected")
        assert status["phone"] == PHONE, status
        assert status["hasQR"] is False, status

        detail = alice.request("GET", f"/api/sessions/{paired.session_id}")
        assert detail.status_code == 200, detail.text
        assert detail.json()["connectedAt"], detail.json()


def test_engine_host_events_reach_the_owner_over_socketio(stack: Stack, alice: User, paired: Paired) -> None:
    """The engine host emits in its own process; Redis carries the events to the web process."""
    with stack.diagnostics():
        alice.events.wait_for(
            lambda events: any(name == "connected" for name, _ in for_session(events, paired.session_id)),
            EVENT_SECONDS,
            "a `connected` event for the session",
        )
        events = for_session(alice.events.snapshot(), paired.session_id)
        names = [name for name, _ in events]
        assert names.index("qr") < names.index("connected"), names

        qr = next(data for name, data in events if name == "qr")
        assert qr["sessionId"] == paired.session_id, qr
        assert qr["qrCode"].startswith("data:image/png;base64,"), qr["qrCode"][:40]
        assert qr_text(qr["qrCode"]) == paired.pairing_url

        connected = next(data for name, data in events if name == "connected")
        assert without_cursor(connected) == {"sessionId": paired.session_id, "phone": PHONE}, connected

        # The event log in PostgreSQL has them in the order heard, under the cursors heard.
        heard = [(name, data["eventId"]) for name, data in events if name in ("qr", "connected")]
        query = {"sessionId": paired.session_id, "types": "qr,connected"}
        logged = alice.request("GET", "/api/events", params=query).json()["events"]
        assert [(event["type"], event["id"]) for event in logged][: len(heard)] == heard, (logged, heard)


def test_other_users_see_neither_the_session_nor_its_events(
    stack: Stack, alice: User, bob: User, paired: Paired
) -> None:
    with stack.diagnostics():
        for path in (
            f"/api/sessions/{paired.session_id}",
            f"/api/sessions/{paired.session_id}/status",
            f"/api/sessions/{paired.session_id}/qr",
        ):
            response = bob.request("GET", path)
            assert response.status_code == 404, (path, response.status_code, response.text)
        listed = bob.request("GET", "/api/sessions").json()
        assert listed["total"] == 0, listed

        # Bob's client does receive events, for his own session only: he is not merely deaf.
        response = bob.request("POST", "/api/sessions")
        assert response.status_code == 201, response.text
        bob_session = response.json()["sessionId"]
        bob.events.wait_for(
            lambda events: bool(for_session(events, bob_session, names=("qr",))),
            EVENT_SECONDS,
            "a `qr` event for Bob's own session",
        )
        alice.events.wait_for(
            lambda events: any(_session_of(data) == paired.session_id for name, data in events),
            EVENT_SECONDS,
            "Alice's events (sanity check)",
        )

        leaked = [(name, data) for name, data in bob.events.snapshot() if _session_of(data) == paired.session_id]
        assert leaked == [], f"Bob received Alice's session events: {leaked}"
        leaked = [(name, data) for name, data in alice.events.snapshot() if _session_of(data) == bob_session]
        assert leaked == [], f"Alice received Bob's session events: {leaked}"


def test_paired_session_survives_an_engine_host_crash(stack: Stack, alice: User, paired: Paired) -> None:
    """kill -9 the engine host; started again with the same id it reconnects without a scan."""
    with stack.diagnostics():
        wait_until(
            lambda: session_status(alice, paired.session_id)["status"] == "connected",
            EVENT_SECONDS,
            "the session to be connected before the crash",
        )
        before = alice.request("GET", f"/api/sessions/{paired.session_id}").json()
        seen = len(alice.events.snapshot())

        stack.processes["engine-host"].kill()
        stack.start_engine_host()

        alice.events.wait_for(
            lambda events: bool(for_session(events[seen:], paired.session_id, names=("connected",))),
            STARTUP_SECONDS,
            "a new `connected` event from the restarted engine host",
        )
        stack.assert_running("engine-host")
        after_crash = for_session(alice.events.snapshot()[seen:], paired.session_id, names=("qr", "connected"))
        assert [name for name, _ in after_crash] == ["connected"], f"a new QR was needed: {after_crash}"
        assert without_cursor(after_crash[0][1]) == {"sessionId": paired.session_id, "phone": PHONE}, after_crash

        after = alice.request("GET", f"/api/sessions/{paired.session_id}").json()
        assert after["status"] == "connected", after
        assert after["phone"] == PHONE and after["hasQR"] is False, after
        assert after["connectedAt"] > before["connectedAt"], (before, after)
        stack.wait_healthy()


def test_bulk_send_survives_a_worker_crash_mid_batch(stack: Stack, carol: User) -> None:
    """kill -9 the worker mid-batch and start it again: every recipient gets exactly one send."""
    with stack.diagnostics():
        session = pair_session(stack, carol, "bulk", CAROL_PHONE)
        wait_until(
            lambda: session_status(carol, session.session_id)["status"] == "connected",
            EVENT_SECONDS,
            "Carol's session to be connected",
        )
        # Valid Indian mobiles; none ends in 0000 (the simulator's "not on WhatsApp").
        contacts = [f"91987{i:07d}" for i in range(1, BULK_CONTACTS + 1)]
        assert not any(contact.endswith("0000") for contact in contacts)

        response = carol.request(
            "POST",
            "/api/whatsapp/bulk-send",
            json={"contacts": contacts, "message": "Crash-proof hello", "delay": BULK_DELAY_MS},
        )
        assert response.status_code == 202, response.text
        batch_id = response.json()["batchId"]
        assert response.json()["sessionId"] == session.session_id, response.json()

        def report() -> dict:
            response = carol.request("GET", f"/api/whatsapp/bulk-send/{batch_id}")
            assert response.status_code == 200, response.text
            return response.json()

        def undispatched() -> int:
            query = "SELECT count(*) FROM messages WHERE batch_id = %s AND dispatched_at IS NULL"
            return stack.sql(query, batch_id)[0][0]

        def mid_batch() -> bool:
            left = undispatched()
            assert left > 0, "every recipient was dispatched before the kill: too late to kill mid-batch"
            return BULK_CONTACTS - left >= BULK_KILL_DISPATCHED and report()["sent"] >= BULK_KILL_SENT

        started = time.monotonic()
        wait_until(
            mid_batch, 30, f"{BULK_KILL_SENT} sent and {BULK_KILL_DISPATCHED} dispatched (to kill the worker)", 0.25
        )
        stack.processes["worker"].kill()  # the whole group: main process, work horse, scheduler
        killed_at = time.monotonic() - started
        at_kill = report()
        left_undispatched = undispatched()
        crash = (
            f"worker killed {killed_at:.1f}s into the batch with {at_kill['sent']}/{at_kill['total']} sent "
            f"and {left_undispatched} recipients not yet dispatched"
        )
        print(crash)  # noqa: T201 (shown with -s or -rP: the kill was mid-batch)
        assert 0 < at_kill["sent"] < BULK_CONTACTS, crash
        assert at_kill["status"] == "running", crash
        assert left_undispatched > 0, f"the kill was not mid-dispatch: {crash}"

        stack.start_worker()
        restarted = time.monotonic()

        settled, progressed = -1, restarted
        while True:
            stack.assert_running("worker", "engine-host")
            final = report()
            if final["status"] == "finished":
                break
            now = time.monotonic()
            if final["sent"] + final["failed"] > settled:
                settled, progressed = final["sent"] + final["failed"], now
            if now - progressed >= BULK_STALL_SECONDS or now - restarted >= BULK_FINISH_SECONDS:
                raise AssertionError(
                    f"the batch is not finishing: {now - restarted:.0f}s after the worker restart, "
                    f"{now - progressed:.0f}s without a newly settled recipient; "
                    f"sent={final['sent']} failed={final['failed']} pending={final['pending']}, "
                    f"{undispatched()} not yet dispatched ({crash})"
                )
            time.sleep(0.5)
        print(f"batch finished {time.monotonic() - restarted:.1f}s after the worker restart")  # noqa: T201

        counts = {key: final[key] for key in ("total", "sent", "failed", "pending")}
        assert counts == {"total": BULK_CONTACTS, "sent": BULK_CONTACTS, "failed": 0, "pending": 0}, (
            f"{counts}; {crash}"
        )
        results = final["results"]
        assert len(results) == BULK_CONTACTS
        assert [result["contact"] for result in results] == contacts
        not_sent = [result for result in results if result["status"] != "Sent" or not result["success"]]
        assert not_sent == [], not_sent[:5]
        message_ids = [result.get("messageId") for result in results]
        assert all(message_ids) and len(set(message_ids)) == BULK_CONTACTS

        # What the simulated WhatsApp network received: each recipient once, nothing twice.
        outbox = stack.root / "data" / "engines" / "simulator" / "outbox" / f"{session.session_id}.jsonl"
        lines = [json.loads(line) for line in outbox.read_text().splitlines() if line]
        assert len(lines) == BULK_CONTACTS, f"{len(lines)} messages in the outbox"
        assert {line["to"] for line in lines} == set(contacts)
        assert len({line["id"] for line in lines}) == BULK_CONTACTS
        wa_ids = {wa_id for (wa_id,) in stack.sql("SELECT wa_id FROM messages WHERE batch_id = %s", batch_id)}
        assert {line["id"] for line in lines} == wa_ids, "the outbox holds messages other than the batch's"
        # And the engine was asked once per message: no retry, no second attempt after the crash.
        attempts = stack.sql("SELECT attempts, count(*) FROM messages WHERE batch_id = %s GROUP BY attempts", batch_id)
        assert attempts == [(1, BULK_CONTACTS)], attempts
        stack.assert_running("web", "worker", "engine-host")


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus endpoint: {(name, sorted labels): value}."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_every_role_serves_its_metrics_and_the_sends_add_up(stack: Stack, alice: User, paired: Paired) -> None:
    """curl /metrics on each role: the web's (gunicorn, multiprocess mode) behind its token,
    the engine host's and the worker's on their ports; two sends show in the counters."""
    import requests

    web = f"{stack.base_url}/metrics"
    engine_host = f"http://127.0.0.1:{stack.env['ENGINE_HOST_METRICS_PORT']}/metrics"
    worker = f"http://127.0.0.1:{stack.env['WORKER_METRICS_PORT']}/metrics"
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    sends = (("sent", ""), ("failed", "NUMBER_NOT_ON_WHATSAPP"))

    def counted(status: str, code: str) -> float:
        """A send outcome as counted by the engine host, or by the web (a number it knew was unknown)."""
        key = ("wagate_sends_total", (("error_code", code), ("status", status)))
        return scrape(engine_host).get(key, 0.0) + scrape(web, **token).get(key, 0.0)

    with stack.diagnostics():
        assert requests.get(web, timeout=HTTP_TIMEOUT).status_code == 401
        wait_until(
            lambda: session_status(alice, paired.session_id)["status"] == "connected",
            EVENT_SECONDS,
            "Alice's session to be connected",
        )
        before = {outcome: counted(*outcome) for outcome in sends}
        for to in ("919876543211", "919876540000"):  # the second is not on WhatsApp
            alice.request("POST", f"/api/sessions/{paired.session_id}/send", json={"to": to, "message": "metered"})
        wait_until(
            lambda: all(counted(*outcome) == before[outcome] + 1 for outcome in sends),
            EVENT_SECONDS,
            "one send counted as sent and one as failed",
        )

        held = scrape(engine_host)
        assert held[("wagate_engine_sessions", (("host", HOST_ID),))] >= 1
        assert ("wagate_send_queue_depth", (("session_id", paired.session_id),)) in held
        assert ("wagate_pace_waits_total", (("reason", "gap"),)) in held
        assert ("wagate_engine_reconnects_total", ()) in held
        assert ("wagate_webhook_attempts_total", (("outcome", "succeeded"),)) in scrape(worker)
        route = (("method", "GET"), ("route", "/api/sessions/<session_id>/status"), ("status", "200"))
        assert scrape(web, **token)[("wagate_http_request_duration_seconds_count", route)] >= 1
