"""What the simulator's ticker costs when its sessions are idle.

    python -m bench.simulator_idle [--sessions 10000] [--seconds 10] [--redis fake|server]

Starts `--sessions` paired, connected simulated sessions on one simulator engine whose
faults come from Redis as on an engine host, sends nothing, and reads the ticker thread's
CPU time from /proc (so the rest of a busy machine barely moves it) and how many ticks it
managed against the TICK_SECONDS it aims at. Not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.governor import redis_connection
from engines import EngineEventKind, EngineSettings
from engines.simulator import TICK_SECONDS, SimulatorEngine
from services.platform.faults import fault_source

CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def thread_cpu_seconds(native_id: int) -> float:
    """User and system CPU time of one thread of this process, from /proc."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--redis", choices=("fake", "server"), default="server" if shutil.which("redis-server") else "fake"
    )
    args = parser.parse_args()
    qr_payloads: dict[str, str] = {}

    def listener(event) -> None:
        if event.kind == EngineEventKind.QR:
            qr_payloads[event.session_id] = event.data["payload"]

    with redis_connection(args.redis) as connection, tempfile.TemporaryDirectory() as folder:
        settings = EngineSettings(data_dir=Path(folder), public_url="http://bench", qr_refresh_seconds=3600)
        engine = SimulatorEngine(listener, settings, faults=fault_source(connection))
        ticks = [0]
        tick = engine._tick

        def counted_tick() -> None:
            ticks[0] += 1
            tick()

        engine._tick = counted_tick
        try:
            started = time.perf_counter()
            for i in range(args.sessions):
                session_id = f"bench-{i}"
                engine.session_start(session_id)
                engine.pair(session_id, qr_payloads[session_id].rsplit("/", 1)[1])
            say(f"{args.sessions} sessions paired in {time.perf_counter() - started:.1f} s (redis: {args.redis})")
            time.sleep(1.0)  # let the ticker settle into idle
            cpu, wall, count = thread_cpu_seconds(engine._ticker.native_id), time.perf_counter(), ticks[0]
            time.sleep(args.seconds)
            cpu = thread_cpu_seconds(engine._ticker.native_id) - cpu
            wall, count = time.perf_counter() - wall, ticks[0] - count
        finally:
            engine.shutdown()
    say(f"ticker CPU : {cpu / wall:6.1%} of a core ({cpu * 1000 / max(count, 1):.2f} ms a tick)")
    say(f"ticks      : {count} in {wall:.1f} s, one every {wall / max(count, 1):.2f} s (aim: {TICK_SECONDS} s)")


if __name__ == "__main__":
    main()
