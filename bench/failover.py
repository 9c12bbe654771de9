"""Engine host failover on a three-node layout: leases, fencing, takeover and balance.

    python -m bench.failover [--sessions 2000] [--hosts 3] [--rounds 5] [--pause 60]
                             [--shared-disk] [--keep-logs]

Everything runs on loopback in a temporary directory, started and stopped by the benchmark:
a real PostgreSQL and redis-server, `flask db upgrade`, gunicorn, `flask worker`, and
`--hosts` engine hosts (`flask engine-host --id host-N`, the simulator engine), each with a
DATA_DIR of its own, as on separate machines (`--shared-disk`: one for all). The settings
are the production defaults (a 5 s heartbeat, 15 s leases). `--sessions` sessions are paired
through the API, as a phone would, and placed by the hosts.

While a client sends steadily (round robin over every session) and a watcher reads, every
second, which sessions each host reports holding, the benchmark:

1. measures calm weather: how long a send takes from the request to `sent` (the baseline);
2. `kill -9`s one host, restarts it 2 s later (as systemd's Restart=always would), and sends
   one probe to every session the host held, 16 requests at a time: when the first and the
   last probe were sent, counted from the kill, and how long each took from its request;
   `--rounds` times, over the hosts in turn;
3. SIGSTOPs a host for `--pause` seconds, then SIGCONT: what it sent, after the stop, for
   the sessions another host took meanwhile (must be nothing);
4. restarts every host in turn with SIGTERM (each hands its sessions over first) and waits
   for the load to even out: each host's share against a third;
5. waits for every accepted message to be sent: lost (accepted, never sent) and sent twice
   (a WhatsApp id twice in the hosts' outboxes).

Figures go side by side with the calm baseline measured in the same run. Not part of the
pytest suite (it takes several minutes).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from bench.pipeline import BENCH_ENV, VENV_BIN, Bench, Production, _wait
from bench.throughput import out

SENT_LIKE = ("sent", "delivered", "read", "played")
SESSIONS_PER_ACCOUNT = 15
RECIPIENT = "919876543210"


class Watcher:
    """Reads every host's report of the sessions it holds, once a second: how many sessions
    two hosts reported at the same moment, and each host's count."""

    def __init__(self, redis_url: str, hosts: list[str]) -> None:
        import redis

        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.hosts = hosts
        self.looks = 0
        self.double_looks = 0
        self.doubled: set[str] = set()
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.redis.close()

    def holding(self) -> dict[str, set[str]]:
        with self.redis.pipeline(transaction=False) as pipeline:
            for host in self.hosts:
                pipeline.smembers(f"wagate:engine-host:{host}:sessions")
            return dict(zip(self.hosts, pipeline.execute(), strict=True))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                holding = self.holding()
            except Exception:  # noqa: BLE001 (a look that failed is not a figure)
                continue
            seen = collections.Counter(session_id for sessions in holding.values() for session_id in sessions)
            doubled = {session_id for session_id, count in seen.items() if count > 1}
            self.looks += 1
            self.double_looks += bool(doubled)
            self.doubled |= doubled
            self.counts = {host: len(sessions) for host, sessions in holding.items()}


class Sender:
    """Sends round robin over the sessions, `rate` a second, keeping what was accepted."""

    def __init__(self, target: Production, rate: float) -> None:
        import requests

        self.target = target
        self.rate = rate
        self.http = requests.Session()
        self.accepted: list[str] = []
        self.refused: collections.Counter[int] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.http.close()

    def send(self, session_id: str, account, text: str) -> str | None:
        try:
            response = self.http.post(
                f"{self.target.base_url}/api/sessions/{session_id}/send",
                json={"to": RECIPIENT, "message": text},
                headers={"Authorization": account.authorization},
                timeout=15,
            )
        except Exception:  # noqa: BLE001 (no answer: not accepted)
            self.refused[0] += 1
            return None
        if response.status_code in (200, 202):
            return response.json()["messageId"]
        self.refused[response.status_code] += 1
        return None

    def _run(self) -> None:
        sessions = self.target.sessions
        n = 0
        while not self._stop.wait(1 / self.rate):
            session_id, account = sessions[n % len(sessions)]
            message_id = self.send(session_id, account, f"steady {n}")
            if message_id:
                self.accepted.append(message_id)
            n += 1


class Failover:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="wagate-failover-"))
        self.bench = Bench(self.root)
        self.stack = self.bench.stack
        self.hosts = [f"host-{n + 1}" for n in range(args.hosts)]
        self.figures: dict[str, str] = {}

    # -- the layout ------------------------------------------------------------------------

    def data_dir(self, host: str) -> Path:
        return self.root / "data" if self.args.shared_disk else self.root / f"data-{host}"

    def start(self) -> Production:
        from tests import test_integration

        # Five processes with their pools (the web, the worker, three engine hosts whose
        # hundreds of send lines each may want a connection): more than the tests' 100.
        test_integration.PG_SETTINGS["max_connections"] = 400
        self.bench.start_servers()
        for key in ("ENGINE_HOST_HEARTBEAT_SECONDS", "SESSION_LEASE_SECONDS"):
            self.stack.env.pop(key, None)  # the production defaults
        self.stack.env.update(SIMULATOR_RECEIPT_SECONDS="1", LOG_LEVEL=BENCH_ENV["LOG_LEVEL"])
        self.stack.migrate()
        self.bench.start_web()
        self.stack.start_worker()
        for host in self.hosts:
            self.start_host(host)
        if not _wait(lambda: set(self.hosts) <= set(self.alive()), 90):
            raise SystemExit("the engine hosts did not come up")
        return Production(self.stack)

    def start_host(self, host: str) -> None:
        env = {**self.stack.env, "DATA_DIR": str(self.data_dir(host))}
        self.stack.start(host, [str(VENV_BIN / "flask"), "--app", "app", "engine-host", "--id", host], env=env)

    def alive(self) -> list[str]:
        return self.stack.health().get("checks", {}).get("engineHosts", {}).get("alive", [])

    def outboxes(self) -> dict[str, list[dict]]:
        """Every host's outbox lines, by session (on separate disks: gathered from each)."""
        lines: dict[str, list[dict]] = collections.defaultdict(list)
        folders = {self.data_dir(host) / "engines" / "simulator" / "outbox" for host in self.hosts}
        for folder in folders:
            for path in folder.glob("*.jsonl") if folder.exists() else ():
                lines[path.stem].extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return lines

    def sent_seconds(self, target: Production, message_ids: list[str], since: float) -> dict[str, float]:
        """For each message sent so far: seconds from `since` to its `sent_at`."""
        rows = target.sql(
            "SELECT id, extract(epoch FROM sent_at) FROM messages WHERE id = ANY(%s) AND sent_at IS NOT NULL",
            message_ids,
        )
        return {message_id: float(at) - since for message_id, at in rows}

    # -- the phases ------------------------------------------------------------------------

    def calm(self, target: Production, sender: Sender) -> list[float]:
        probes = {}
        for session_id, account in target.sessions[:: max(1, len(target.sessions) // 100)]:
            started = time.time()
            message_id = sender.send(session_id, account, "calm probe")
            if message_id:
                probes[message_id] = started
        _wait(lambda: len(self.sent_seconds(target, list(probes), 0)) == len(probes), 60)
        sent = self.sent_seconds(target, list(probes), 0)
        return sorted(sent[message_id] - started for message_id, started in probes.items() if message_id in sent)

    def kill_round(self, target: Production, sender: Sender, watcher: Watcher, host: str) -> dict:
        """kill -9 `host`, start it again 2 s later, and probe every session it held at once
        (16 requests at a time): when the first probe was sent and when the last, counted
        from the kill, and how long each took from its request."""
        held = watcher.holding()[host]
        accounts = dict(target.sessions)
        killed_at = time.time()
        self.stack.processes[host].kill()
        time.sleep(2)
        self.start_host(host)
        text = f"probe after killing {host}"
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = pool.map(lambda session_id: sender.send(session_id, accounts[session_id], text), held)
            probes = [message_id for message_id in answers if message_id]
        sender.accepted.extend(probes)

        def times() -> list[tuple[float, float]]:
            rows = target.sql(
                "SELECT extract(epoch FROM created_at), extract(epoch FROM sent_at) FROM messages "
                "WHERE id = ANY(%s) AND sent_at IS NOT NULL",
                probes,
            )
            return [(float(created), float(sent)) for created, sent in rows]

        _wait(lambda: len(times()) == len(probes), 120, 1.0)
        sent = times()
        _wait(lambda: host in self.alive(), 60)
        return {
            "held": len(held),
            "first": min((at for _, at in sent), default=float("inf")) - killed_at,
            "last": max((at for _, at in sent), default=float("inf")) - killed_at,
            "latency": sorted(at - created for created, at in sent),
            "unsent": len(probes) - len(sent),
        }

    def pause(self, target: Production, watcher: Watcher, host: str) -> tuple[int, int, int]:
        before = watcher.holding()[host]
        stopped_at = time.time()
        self.stack.processes[host].signal_group(signal.SIGSTOP)
        try:
            time.sleep(self.args.pause)
            moved = {session_id for session_id in before if session_id not in watcher.holding()[host]}
        finally:
            self.stack.processes[host].signal_group(signal.SIGCONT)
        time.sleep(10)  # what the woken host might still do
        late = sum(
            1
            for session_id in moved
            for line in self.outboxes().get(session_id, ())
            if line.get("host") == host and datetime.fromisoformat(line["at"]).timestamp() > stopped_at
        )
        return len(before), len(moved), late

    def rolling_restart(self, watcher: Watcher) -> tuple[float, dict[str, int]]:
        for host in self.hosts:
            self.stack.processes[host].stop(timeout=60)  # SIGTERM: it drains first
            self.start_host(host)
            _wait(lambda host=host: host in self.alive(), 60)
        started = time.monotonic()
        third = self.args.sessions / len(self.hosts)

        def even() -> bool:
            counts = watcher.counts
            return bool(counts) and all(abs(count - third) <= 0.15 * third for count in counts.values())

        _wait(even, 600, 1.0)
        return time.monotonic() - started, dict(watcher.counts)

    def settle(self, target: Production, sender: Sender) -> tuple[int, int, int]:
        accepted = list(dict.fromkeys(sender.accepted))

        def unsent() -> int:
            rows = target.sql(
                "SELECT count(*) FROM messages WHERE id = ANY(%s) AND status = ANY(%s)", accepted, list(SENT_LIKE)
            )
            return len(accepted) - rows[0][0]

        _wait(lambda: unsent() == 0, 180, 2.0)
        carried = collections.Counter(line["id"] for lines in self.outboxes().values() for line in lines)
        twice = sum(1 for count in carried.values() if count > 1)
        return len(accepted), unsent(), twice

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        out(
            f"failover: {args.sessions} sessions over {len(self.hosts)} engine hosts, "
            f"{'one disk' if args.shared_disk else 'a disk each'}, logs in {self.root / 'logs'}"
        )
        target = self.start()
        started = time.monotonic()
        target.register(-(-args.sessions // SESSIONS_PER_ACCOUNT))
        target.pair(args.sessions)
        out(f"paired {len(target.sessions)} sessions in {time.monotonic() - started:.0f} s")
        watcher = Watcher(self.stack.redis_url, self.hosts)
        watcher.start()
        _wait(lambda: sum(watcher.counts.values()) >= args.sessions, 120, 1.0)
        out(f"placed: {watcher.counts}")
        sender = Sender(target, args.rate)
        sender.start()
        try:
            calm = self.calm(target, sender)
            out(f"calm: send to sent p50 {_p(calm, 0.5):.2f} s, max {max(calm, default=0):.2f} s ({len(calm)} probes)")
            rounds = []
            for n in range(args.rounds):
                host = self.hosts[n % len(self.hosts)]
                done = self.kill_round(target, sender, watcher, host)
                rounds.append(done)
                out(
                    f"kill -9 {host} (held {done['held']}), back 2 s later: first probe sent {done['first']:.1f} s "
                    f"after the kill, the last {done['last']:.1f} s ({done['unsent']} unsent); each from its "
                    f"request p50 {_p(done['latency'], 0.5):.2f} s, max {max(done['latency'], default=0):.2f} s; "
                    f"double holds so far {len(watcher.doubled)}"
                )
                time.sleep(5)
            held, moved, late = self.pause(target, watcher, self.hosts[0])
            out(
                f"SIGSTOP {self.hosts[0]} {args.pause} s (held {held}, {moved} taken by others): "
                f"sent by it afterwards for those: {late}"
            )
            seconds, counts = self.rolling_restart(watcher)
            third = args.sessions / len(self.hosts)
            spread = max(abs(count - third) / third for count in counts.values()) if counts else float("nan")
            out(f"rolling restart: even within {spread:.0%} of a third after {seconds:.0f} s: {counts}")
        finally:
            sender.stop()
        accepted, lost, twice = self.settle(target, sender)
        watcher.stop()
        latency = sorted(seconds for done in rounds for seconds in done["latency"])
        out()
        out(f"{'figure':<46} {'calm baseline':>14} {'failover':>12}")
        out(f"{'probe request to sent, p50 (s)':<46} {_p(calm, 0.5):>14.2f} {_p(latency, 0.5):>12.2f}")
        out(f"{'probe request to sent, worst (s)':<46} {max(calm, default=0):>14.2f} {max(latency, default=0):>12.2f}")
        first = max((done["first"] for done in rounds), default=float("nan"))
        last = max((done["last"] for done in rounds), default=float("nan"))
        out(f"{'kill to first probe sent, worst round (s)':<46} {'':>14} {first:>12.1f}")
        out(f"{'kill to every probe sent, worst round (s)':<46} {'':>14} {last:>12.1f}")
        out(f"{'sessions ever reported by two hosts':<46} {'':>14} {len(watcher.doubled):>12}")
        out(f"{'looks with a double hold / looks':<46} {'':>14} {watcher.double_looks:>5} / {watcher.looks:<5}")
        out(f"{'sent by a paused host for sessions it lost':<46} {'':>14} {late:>12}")
        out(f"{'accepted / lost / sent twice':<46} {'':>14} {accepted:>5} / {lost} / {twice}")
        out(f"{'refused answers (status: count)':<46} {'':>14} {dict(sender.refused)!s:>12}")
        out(f"{'largest share off a third after the restart':<46} {'':>14} {spread:>12.0%}")


def _p(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pause", type=float, default=60.0, help="seconds a host stays SIGSTOPped")
    parser.add_argument("--rate", type=float, default=20.0, help="steady sends a second")
    parser.add_argument("--shared-disk", action="store_true", help="one DATA_DIR for every node")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    failover = Failover(args)
    try:
        failover.run()
    finally:
        with contextlib.suppress(Exception):
            failover.bench.close(args.keep_logs)


if __name__ == "__main__":
    main()
