"""Run-time fault switches for the simulator engine, kept in Redis so every process sees them.

A fault is switched on for one session or for all ("*"); the simulator reads them on each
call and tick.
"""

from __future__ import annotations

from redis import Redis

ALL_SESSIONS = "*"
FAULTS_KEY = "wagate:simulator:faults:{}"


def faults_read(connection: Redis, session_id: str) -> set[str]:
    """The faults in force for a session: its own plus the ones switched on for all."""
    keys = [FAULTS_KEY.format(ALL_SESSIONS), FAULTS_KEY.format(session_id)]
    return {member.decode() for key in keys for member in connection.smembers(key)}


def faults_list(connection: Redis, scope: str) -> list[str]:
    return sorted(member.decode() for member in connection.smembers(FAULTS_KEY.format(scope)))


def faults_set(connection: Redis, scope: str, changes: dict[str, bool]) -> list[str]:
    """Switch faults (of FAULTS: the API's schema and the command line's choices say which)
    on (True) or off (False) for a scope; returns the faults now on."""
    for name, enabled in changes.items():
        if enabled:
            connection.sadd(FAULTS_KEY.format(scope), name)
        else:
            connection.srem(FAULTS_KEY.format(scope), name)
    return faults_list(connection, scope)


def faults_clear(connection: Redis, scope: str) -> None:
    connection.delete(FAULTS_KEY.format(scope))
