"""Resident memory and file handles per idle session of the neonize engine, offline.

    python -m bench.neonize_memory [--sessions 100] [--attempts 2]

Runs the neonize engine (engines/neonize) in this process, with no Flask and no network:
a temporary DATA_DIR, one SQLite device store per session. It measures the process after
each step:

* neonize loaded, the engine made;
* N sessions started while the reachability probe fails (a closed local port): each has
  its client and a runner thread waiting out its back-off, and made no connect attempt;
* then, with the probe off, each session's connect attempts (`--attempts`, the dial fails
  at once offline): every attempt opens the device store again, and neonize never closes
  the old handle. This is the idle cost of a session that cannot reach WhatsApp.

A logged-in session costs more (its socket, keys in memory, history sync); that cannot be
measured offline. Not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS in /proc/self/status (Linux only)")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def snapshot(label: str) -> dict:
    return {"state": label, "rss": rss_kib(), "threads": threading.active_count(), "fds": open_fds()}


def wait_for_errors(events: queue.Queue, count: int, timeout: float) -> None:
    """Wait until `count` sessions reported an ERROR (one failed attempt each)."""
    from engines.base import EngineEventKind

    deadline = time.monotonic() + timeout
    seen = 0
    while seen < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SystemExit(f"only {seen} of {count} sessions reported a failed attempt within {timeout:g} s")
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            continue
        if event.kind == EngineEventKind.ERROR:
            seen += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--attempts", type=int, default=2, help="failed connect attempts per session")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sys.path.insert(0, str(REPO))

    rows = [snapshot("python, before neonize")]
    from engines.base import EngineSettings
    from engines.neonize.engine import NeonizeEngine

    events: queue.Queue = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="wagate-bench-") as data_dir:
        settings = EngineSettings(data_dir=Path(data_dir), public_url="http://127.0.0.1:5000")
        # Waits far longer than the run: each session makes exactly the attempts asked for.
        engine = NeonizeEngine(
            events.put, settings, probe_address="127.0.0.1:9", reconnect_base_seconds=3600, log_level="ERROR"
        )
        rows.append(snapshot("neonize loaded, engine made"))
        base = rows[-1]
        session_ids = [f"bench-{number:04d}" for number in range(args.sessions)]
        try:
            for session_id in session_ids:
                engine.session_start(session_id)
            wait_for_errors(events, args.sessions, timeout=60)
            rows.append(snapshot(f"{args.sessions} sessions, probe failing (no connect)"))
            engine.probe_address = ""  # neonize dials for itself from now on
            for attempt in range(1, args.attempts + 1):
                for session_id in session_ids:
                    engine.session_start(session_id)  # a held session waiting out its back-off tries now
                wait_for_errors(events, args.sessions, timeout=120)
                rows.append(snapshot(f"{args.sessions} sessions, {attempt} failed connect(s) each"))
        finally:
            started = time.monotonic()
            engine.shutdown()
            stop_seconds = time.monotonic() - started

    out(f"neonize engine, {args.sessions} idle sessions, offline (SQLite device stores)")
    out()
    out(f"{'state':<44} {'RSS MB':>8} {'per session':>12} {'threads':>8} {'fds':>6}")
    for row in rows:
        per_session = ""
        if row["rss"] != base["rss"] and row["state"] not in (rows[0]["state"], base["state"]):
            per_session = f"{(row['rss'] - base['rss']) / args.sessions:,.0f} KiB"
        out(f"{row['state']:<44} {row['rss'] / 1024:>8.1f} {per_session:>12} {row['threads']:>8} {row['fds']:>6}")
    out()
    out(f"shutdown of {args.sessions} sessions: {stop_seconds:.2f} s")


if __name__ == "__main__":
    main()
