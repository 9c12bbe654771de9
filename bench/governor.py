"""The send governor's cost per message, next to the ungoverned path it replaced.

    python -m bench.governor [--messages 20000] [--lanes 4] [--redis fake|server]

Both paths move the same messages through Redis on a clock that jumps (no sleeping), so
what is measured is the bookkeeping alone:

* ungoverned: RPUSH each id on one list, then LPOP them one by one (a plain FIFO);
* governed: `SendQueue.push` on `--lanes` lanes (a bulk batch each), then per message
  `take` (quiet hours, gap, per-minute and per-day ceilings, the turn between lanes) and
  `sent` (the send counted, the next slot picked).

`--redis server` starts a private redis-server on a free loopback port (as production runs
it, over TCP); `fake` uses fakeredis in process (as `python app.py` does). Not part of the
pytest suite.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import fakeredis
import redis

from services.governor.queue import Pace, SendQueue


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def redis_connection(kind: str):
    if kind == "fake":
        yield fakeredis.FakeRedis()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server), or use --redis fake")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        try:
            connection = redis.Redis(port=port)
            for _ in range(100):
                try:
                    connection.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield connection
        finally:
            server.terminate()
            server.wait(timeout=10)


def ungoverned(connection, count: int) -> float:
    ids = [f"m{i}" for i in range(count)]
    started = time.perf_counter()
    for message_id in ids:
        connection.rpush("bench:plain", message_id)
    while connection.lpop("bench:plain") is not None:
        pass
    return time.perf_counter() - started


def governed(connection, count: int, lanes: int) -> tuple[float, int]:
    queue = SendQueue(connection, "bench")
    queue.clear()
    pace = Pace(min_gap_seconds=4, jitter_seconds=3, per_minute=12, per_day=10**9, warmup=())
    rng = random.Random(1)
    now, taken = 1_790_000_000.0, 0
    started = time.perf_counter()
    for i in range(count):
        queue.push(f"m{i}", lane=f"batch:{i % lanes}", floor_seconds=2)
    while True:
        decision = queue.take(pace, now)
        if decision.message_id is not None:
            queue.sent(decision.message_id, decision.lane, pace, now, rng=rng)
            taken += 1
        elif decision.wait is None:
            break
        else:
            now += decision.wait
    return time.perf_counter() - started, taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument(
        "--redis", choices=("fake", "server"), default="server" if shutil.which("redis-server") else "fake"
    )
    args = parser.parse_args()
    with redis_connection(args.redis) as connection:
        plain = ungoverned(connection, args.messages)
        paced, taken = governed(connection, args.messages, args.lanes)
    assert taken == args.messages, (taken, args.messages)
    per_plain = plain / args.messages * 1e6
    per_paced = paced / args.messages * 1e6
    say(f"redis: {args.redis}; {args.messages} messages on {args.lanes} lanes")
    say(f"ungoverned FIFO : {per_plain:8.1f} µs/message ({args.messages / plain:,.0f} messages/s)")
    say(f"governed        : {per_paced:8.1f} µs/message ({args.messages / paced:,.0f} messages/s)")
    say(f"overhead        : {per_paced - per_plain:8.1f} µs/message; a paced session sends one message every")
    say("                  few seconds, so the governor costs well under 0.1% of a session's time")


if __name__ == "__main__":
    main()
