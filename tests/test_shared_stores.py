"""The roles meant to run beside one another refuse to start without Redis and PostgreSQL.

`flask worker`, `flask engine-host` and the web under gunicorn, started with a clean
environment (no REDIS_URL, no DATABASE_URL), exit non-zero with one line naming what is
missing; WAGATE_SINGLE_NODE=1 lets them run alone on purpose.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import shared_stores_missing

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def test_both_stores_set_may_start():
    assert shared_stores_missing("worker", {"REDIS_URL": "redis://r", "DATABASE_URL": "postgresql://d"}) is None


def test_sentinels_stand_for_redis_url():
    settings = {"REDIS_SENTINELS": "10.0.0.5:26379,10.0.0.6:26379", "DATABASE_URL": "postgresql://d"}
    assert shared_stores_missing("web", settings) is None


def test_each_missing_store_is_named():
    only_db = shared_stores_missing("worker", {"REDIS_URL": "redis://r", "DATABASE_URL": ""})
    assert only_db.startswith("wagate worker: DATABASE_URL is not set;"), only_db
    only_redis = shared_stores_missing("web", {"DATABASE_URL": "postgresql://d"})
    assert only_redis.startswith("wagate web: REDIS_URL is not set;"), only_redis
    both = shared_stores_missing("engine host", {})
    assert both.startswith("wagate engine host: REDIS_URL and DATABASE_URL are not set;"), both
    assert "WAGATE_SINGLE_NODE=1" in both


@pytest.mark.parametrize("value", ["1", "true", True])
def test_single_node_opts_out(value):
    assert shared_stores_missing("worker", {"WAGATE_SINGLE_NODE": value}) is None


def test_single_node_off_still_refuses():
    assert shared_stores_missing("worker", {"WAGATE_SINGLE_NODE": "0"}) is not None


def _start(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        args, cwd=REPO, env=clean, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("role", "args"),
    [
        ("worker", ["flask", "--app", "app", "worker", "--burst"]),
        ("engine host", ["flask", "--app", "app", "engine-host", "--id", "host-a"]),
        ("web", ["gunicorn", "-c", "gunicorn.conf.py", "-b", "127.0.0.1:0", "--no-control-socket", "wsgi:app"]),
    ],
)
def test_a_role_without_redis_refuses_to_start(role, args, tmp_path):
    result = _start([str(VENV_BIN / args[0]), *args[1:]], tmp_path, DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/d")
    assert result.returncode != 0, result.stdout + result.stderr
    reasons = [line for line in result.stderr.splitlines() if "wagate" in line and "not set" in line]
    assert len(reasons) == 1, result.stderr
    assert f"Error: wagate {role}: REDIS_URL is not set;" in reasons[0], reasons


def test_single_node_lets_a_burst_worker_run_alone(tmp_path):
    """The opt-out: a worker with neither store runs (here: finds nothing to do and quits)."""
    migrate = _start([str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"], tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    result = _start([str(VENV_BIN / "flask"), "--app", "app", "worker", "--burst"], tmp_path, WAGATE_SINGLE_NODE="1")
    assert result.returncode == 0, result.stderr
    assert "not set" not in result.stderr
