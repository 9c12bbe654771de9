"""The background roles ride out store outages and restarts, on the production topology.

One module-scoped stack (tests/test_integration.py's Stack: real redis-server and
PostgreSQL on loopback, gunicorn, `flask worker`, `flask engine-host --id host-a`), driven
from outside as a customer would, while the stores under it go away:

- Redis killed (SIGKILL, its data gone) for 15 s and started again: the engine host and the
  worker keep running, and the sends accepted before it are sent afterwards, each once;
- PostgreSQL stopped for 15 s and started again: the engine host keeps running, the
  receipts that arrive meanwhile wait in its spool and are all applied afterwards, and the
  sends it could not make meanwhile are made, each once;
- the engine host killed (kill -9) with receipts still due and started again: no message
  stays at "sent".
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_integration import (
    HOST_ID,
    STARTUP_SECONDS,
    Stack,
    User,
    connected_user,
    pair_session,
    session_status,
    stack_started,
    wait_until,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 15
# After a store is back: the roles find it within their longest backoff (5 s), then catch up.
RECOVERY_SECONDS = 45
RECEIPT_SECONDS = 3  # the simulator's delivered receipt (read: twice that)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    settings = {
        # Receipts a little later, so that they arrive during the outages and kills.
        "SIMULATOR_RECEIPT_SECONDS": str(RECEIPT_SECONDS),
        # A host notices Redis coming back without its data within a second.
        "ENGINE_HOST_HEARTBEAT_SECONDS": "1",
        # A send waiting its turn answers 202 after a second, not five.
        "SEND_WAIT_SECONDS": "1",
    }
    with stack_started("outage-roles", settings) as started:
        yield started


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "alice") as user:
        yield user


@pytest.fixture(scope="module")
def session_id(stack: Stack, alice: User) -> str:
    with stack.diagnostics():
        session_id = pair_session(stack, alice, "outages", "919876543210").session_id
        wait_until(
            lambda: session_status(alice, session_id)["status"] == "connected", 15, "the session to be connected"
        )
        return session_id


# -- what the tests look at -----------------------------------------------------------------


def numbers(prefix: str, count: int) -> list[str]:
    """`count` numbers on WhatsApp that read their messages (none ends in 9, or in 0000)."""
    return [f"{prefix}{i:03d}1" for i in range(1, count + 1)]


def send(user: User, session_id: str, to: str, text: str, **extra) -> str:
    response = user.request("POST", f"/api/sessions/{session_id}/send", json={"to": to, "message": text, **extra})
    assert response.status_code in (200, 202), response.text
    return response.json()["messageId"]


def send_many(user: User, session_id: str, recipients: list[str], text: str, **extra) -> list[str]:
    """Send to each recipient at once (a client's threads), each send answered."""
    with ThreadPoolExecutor(max_workers=len(recipients)) as pool:
        futures = [pool.submit(send, user, session_id, to, f"{text} {to}", **extra) for to in recipients]
        return [future.result() for future in futures]


def pace_set(user: User, session_id: str, **pace) -> None:
    response = user.request("PUT", f"/api/sessions/{session_id}/pace", json=pace)
    assert response.status_code == 200, response.text


def statuses(stack: Stack, message_ids: list[str]) -> dict[str, str]:
    rows = stack.sql("SELECT id, status FROM messages WHERE id = ANY(%s)", message_ids)
    return dict(rows)


def outbox(stack: Stack, session_id: str) -> list[dict]:
    """What the simulated WhatsApp network carried for the session, in order."""
    path = stack.root / "data" / "engines" / "simulator" / "outbox" / f"{session_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def sent_once(stack: Stack, session_id: str, message_ids: list[str]) -> None:
    """Each message went out on the network exactly once."""
    wa_ids = dict(stack.sql("SELECT id, wa_id FROM messages WHERE id = ANY(%s)", message_ids))
    carried = [entry["id"] for entry in outbox(stack, session_id)]
    counts = {message_id: carried.count(wa_id) for message_id, wa_id in wa_ids.items()}
    assert counts == dict.fromkeys(message_ids, 1), counts


def spool_entries(stack: Stack) -> int:
    """What the engine host's spool holds (it exists once something was spooled)."""
    path = stack.root / "data" / "spool" / f"{HOST_ID}.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as connection:
        return connection.execute("SELECT count(*) FROM spool").fetchone()[0]


def status_events(user: User, message_ids: list[str]) -> dict[tuple[str, str], int]:
    """How many `message_status` events each (message, status) got over Socket.IO."""
    wanted = set(message_ids)
    counts: dict[tuple[str, str], int] = {}
    for name, data in user.events.snapshot():
        if name == "message_status" and data.get("messageId") in wanted:
            key = (data["messageId"], data["status"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def redis_restart_after(stack: Stack, seconds: float) -> None:
    """kill -9 redis-server (its data goes with it: no persistence) and start it again later."""
    stack.processes["redis"].kill()
    time.sleep(seconds)
    stack.assert_running("engine-host", "worker")
    stack.redis_start_again()


# -- the tests ------------------------------------------------------------------------------


def test_engine_host_and_worker_ride_out_a_redis_kill(stack: Stack, alice: User, session_id: str) -> None:
    """Sends accepted before Redis dies (and its queues with it) are sent once it is back."""
    with stack.diagnostics():
        # One message a second: most of them are still waiting in Redis when it dies, and so
        # are those scheduled for a time during the outage.
        pace_set(alice, session_id, minGapSeconds=1, jitterSeconds=0)
        send_at = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        scheduled = send_many(alice, session_id, numbers("91987651", 3), "due", sendAt=send_at)
        accepted = send_many(alice, session_id, numbers("91987650", 8), "before the kill")
        accepted += scheduled
        waiting = sum(status in ("queued", "scheduled") for status in statuses(stack, accepted).values())
        assert waiting >= 8, f"only {waiting} of {len(accepted)} were still waiting when Redis died"

        redis_restart_after(stack, OUTAGE_SECONDS)
        restarted = time.monotonic()

        wait_until(
            lambda: all(status not in ("queued", "scheduled") for status in statuses(stack, accepted).values()),
            RECOVERY_SECONDS,
            "every accepted send to be sent after Redis came back",
            interval=0.5,
        )
        print(  # noqa: T201 (the figures, shown with -s or -rP)
            f"Redis outage: {waiting} of {len(accepted)} sends waiting in Redis when it died; "
            f"all sent {time.monotonic() - restarted:.1f}s after it came back"
        )
        assert set(statuses(stack, accepted).values()) <= {"sent", "delivered", "read"}, statuses(stack, accepted)
        sent_once(stack, session_id, accepted)

        # Both roles are still up and registered again with the new Redis, and new work flows.
        stack.assert_running("engine-host", "worker", "web")
        wait_until(stack.workers_registered, 20, "the RQ workers to register again with the new Redis")
        stack.wait_healthy()
        pace_set(alice, session_id, minGapSeconds=None, jitterSeconds=None)
        after = send(alice, session_id, "919876519999", "after the Redis kill")
        wait_until(lambda: statuses(stack, [after])[after] != "queued", 20, "a send made after the outage")
        sent_once(stack, session_id, [after])


def test_receipts_that_arrive_while_postgresql_is_down_are_applied(stack: Stack, alice: User, session_id: str) -> None:
    with stack.diagnostics():
        stack.wait_healthy()
        # Sent at once; their receipts come 3 s and 6 s later, while PostgreSQL is down.
        fast = send_many(alice, session_id, numbers("91987661", 30), "before the stop")
        wait_until(
            lambda: all(status != "queued" for status in statuses(stack, fast).values()), 10, "the sends to go out"
        )
        # And a few that wait their turn (one a second): the engine host sends them afterwards.
        pace_set(alice, session_id, minGapSeconds=1, jitterSeconds=0)
        slow = send_many(alice, session_id, numbers("91987662", 4), "paced")
        stack.postgres_stop()

        time.sleep(OUTAGE_SECONDS)  # every receipt due comes meanwhile
        spooled = spool_entries(stack)
        # At least the read receipts (due 6 s after the sends, well after the stop), in the spool.
        assert spooled >= len(fast), f"{spooled} events spooled"
        stack.assert_running("engine-host", "worker")
        stack.postgres_start_again()
        started = time.monotonic()

        wait_until(lambda: spool_entries(stack) == 0, RECOVERY_SECONDS, "the spool to be applied", interval=0.5)
        applied_after = time.monotonic() - started
        wait_until(
            lambda: set(statuses(stack, fast + slow).values()) == {"read"},
            RECOVERY_SECONDS,
            "every message to be read",
            interval=0.5,
        )
        print(  # noqa: T201
            f"PostgreSQL outage: {spooled} events spooled, "
            f"spool applied {applied_after:.1f}s after it came back; {len(slow)} paced sends made afterwards"
        )
        sent_once(stack, session_id, fast + slow)
        # Each receipt was applied once: one event per message and status, none missing.
        events = status_events(alice, fast)
        for status in ("delivered", "read"):
            counts = [events.get((message_id, status), 0) for message_id in fast]
            assert counts == [1] * len(fast), (status, counts)
        stack.assert_running("engine-host", "worker", "web")
        pace_set(alice, session_id, minGapSeconds=None, jitterSeconds=None)


def test_no_message_stays_sent_after_an_engine_host_kill(stack: Stack, alice: User, session_id: str) -> None:
    """The simulated WhatsApp keeps the receipts it owes: a restarted host gets them."""
    with stack.diagnostics():
        stack.wait_healthy()
        sent = send_many(alice, session_id, numbers("91987671", 20), "before the kill")
        wait_until(
            lambda: all(status != "queued" for status in statuses(stack, sent).values()), 10, "the sends to go out"
        )
        stack.processes["engine-host"].kill()
        at_kill = sum(status == "sent" for status in statuses(stack, sent).values())
        assert at_kill > 0, "every receipt came before the kill: too late to test"
        stack.start_engine_host()
        stack.wait_healthy()
        wait_until(
            lambda: set(statuses(stack, sent).values()) == {"read"},
            STARTUP_SECONDS,
            "every message to be read after the restart",
            interval=0.5,
        )
        print(f"engine host kill -9: {at_kill} of {len(sent)} messages at 'sent'; 0 after the restart")  # noqa: T201
        sent_once(stack, session_id, sent)
