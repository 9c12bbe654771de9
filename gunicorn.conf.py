"""gunicorn's settings for the web role: `gunicorn -c gunicorn.conf.py -b 127.0.0.1:5000 wsgi:app`.

One gevent worker: each connection (a Socket.IO WebSocket, an SSE stream, a send waiting for
its outcome, a plain request) is a greenlet, so a thousand live clients cost memory, not a
thread each (README, Running the roles separately). Options given on the command line win
over these. gunicorn reads this file before the worker patches the standard library and
loads the app: it imports nothing of the app but config.py's check of the settings (which
imports only the standard library).
"""

import os
import resource
import shutil
import tempfile
from pathlib import Path

worker_class = "gevent"
# Socket.IO's polling transport needs every request of a client on one worker: more web
# processes go behind a proxy with sticky sessions, not more workers here.
workers = 1
# Connections the worker holds at once (live clients and requests together); past this, new
# ones wait in the listen backlog until one closes.
worker_connections = 4000
# How long a connection may take to send a request's head, and stay idle between requests:
# past it the worker closes it, so idle or trickling clients cannot pile up.
keepalive = 5
# A worker whose loop stops turning this long (something blocking every greenlet) is restarted.
timeout = 30
graceful_timeout = 10
# The directory of Prometheus's multiprocess mode made for this run (see on_starting), if any.
_made_metrics_dir: str | None = None


def on_starting(server) -> None:
    """Refuse to start without REDIS_URL and DATABASE_URL (gunicorn prints the reason and
    exits 1; wsgi.py checks again for other servers). Then let the worker open a file
    descriptor per connection it may hold, and some to spare (database and Redis
    connections, files): many systems start services with a soft limit of 1,024."""
    from config import shared_stores_missing

    problem = shared_stores_missing("web", os.environ)
    if problem:
        raise RuntimeError(problem)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = server.cfg.worker_connections + 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        server.log.info("raised the open-file limit from %d to %d", soft, wanted)
    _metrics_dir_prepare()


def _metrics_dir_prepare() -> None:
    """Prometheus: each web process writes its metrics to files in PROMETHEUS_MULTIPROC_DIR,
    and GET /metrics adds up every process's (prometheus_client's multiprocess mode). Set
    here, before any worker starts, so only the web role runs in that mode (the worker and the
    engine host are single processes that serve their own). An operator's directory is used
    as it is, emptied of an earlier run's files (they would be added in); otherwise a fresh
    one is made for this run and removed after it."""
    global _made_metrics_dir
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _made_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="wagate-metrics-")
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """A web process ended: its live gauges leave /metrics (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
