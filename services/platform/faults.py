"""Run-time fault switches for the simulator engine, kept in Redis so every process sees them.

A fault is switched on for one session or for all ("*"). Every switch lives in one small
hash (field "<scope>:<fault>"), so the simulator reads them all in one round trip: before
each call it makes (a switch applies to the very next one) and once per tick for all its
sessions, however many they are.
"""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis

from engines.simulator import ALL_SESSIONS
from services.platform.store_outage import REDIS_DOWN

__all__ = ["ALL_SESSIONS", "fault_source", "faults_clear", "faults_list", "faults_set", "faults_switched"]

FAULTS_KEY = "wagate:simulator:faults"


def faults_switched(connection: Redis) -> dict[str, set[str]]:
    """Every fault switched on, by scope (a session id, or "*" for all sessions)."""
    switched: dict[str, set[str]] = {}
    for field in connection.hkeys(FAULTS_KEY):
        scope, _, name = field.decode().rpartition(":")
        switched.setdefault(scope, set()).add(name)
    return switched


def fault_source(connection: Redis) -> Callable[[], dict[str, set[str]]]:
    """What the simulator engine reads its faults from (its `faults` option). While Redis is
    out of reach the switches last read stay in force: the simulated WhatsApp goes on."""
    last: dict[str, set[str]] = {}

    def read() -> dict[str, set[str]]:
        nonlocal last
        try:
            last = faults_switched(connection)
        except REDIS_DOWN:
            pass
        return last

    return read


def faults_list(connection: Redis, scope: str) -> list[str]:
    return sorted(faults_switched(connection).get(scope, ()))


def faults_set(connection: Redis, scope: str, changes: dict[str, bool]) -> list[str]:
    """Switch faults (of FAULTS: the API's schema and the command line's choices say which)
    on (True) or off (False) for a scope; returns the faults now on."""
    with connection.pipeline(transaction=True) as pipe:
        for name, enabled in changes.items():
            if enabled:
                pipe.hset(FAULTS_KEY, f"{scope}:{name}", 1)
            else:
                pipe.hdel(FAULTS_KEY, f"{scope}:{name}")
        pipe.execute()
    return faults_list(connection, scope)


def faults_clear(connection: Redis, scope: str) -> None:
    names = faults_list(connection, scope)
    if names:
        connection.hdel(FAULTS_KEY, *(f"{scope}:{name}" for name in names))
