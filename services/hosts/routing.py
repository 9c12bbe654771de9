"""Which engine hosts are alive, and which queue reaches the host that owns a session.

Each engine host keeps a heartbeat key in Redis. A session is owned by the host that
started it; jobs for it go to that host's own queue while the host is alive, and to the
shared engine queue (any host picks it up and takes ownership) otherwise.
"""

from __future__ import annotations

import json
import time

from flask import current_app
from rq import Queue

from extensions import queues
from jobs.queues import ENGINE_QUEUE, engine_host_queue_name

HOSTS_KEY = "wagate:engine-hosts"
HEARTBEAT_KEY = "wagate:engine-host:{}"


def host_heartbeat(host_id: str, *, engine: str, sessions: int) -> None:
    ttl = max(3, int(current_app.config["ENGINE_HOST_HEARTBEAT_SECONDS"] * 3))
    beat = {"engine": engine, "sessions": sessions, "at": time.time()}
    connection = queues.connection
    connection.sadd(HOSTS_KEY, host_id)
    connection.set(HEARTBEAT_KEY.format(host_id), json.dumps(beat), ex=ttl)


def host_retire(host_id: str) -> None:
    connection = queues.connection
    connection.delete(HEARTBEAT_KEY.format(host_id))
    connection.srem(HOSTS_KEY, host_id)


def hosts_alive() -> dict[str, dict]:
    connection = queues.connection
    alive = {}
    for raw_id in connection.smembers(HOSTS_KEY):
        host_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        beat = connection.get(HEARTBEAT_KEY.format(host_id))
        if beat is not None:
            alive[host_id] = json.loads(beat)
    return alive


def host_is_alive(host_id: str | None) -> bool:
    return bool(host_id) and queues.connection.exists(HEARTBEAT_KEY.format(host_id)) == 1


def engine_queue_for(host_id: str | None) -> Queue:
    if host_id and host_is_alive(host_id):
        return queues.queue(engine_host_queue_name(host_id))
    return queues.queue(ENGINE_QUEUE)


OVERLOAD_KEY = "wagate:overloaded:{}"


def session_overload_mark(session_id: str, seconds: int) -> None:
    """WhatsApp answered a session's send with "overloaded": new sends wait `seconds`."""
    queues.connection.set(OVERLOAD_KEY.format(session_id), 1, ex=max(1, int(seconds)))


def session_overloaded_for(session_id: str) -> int | None:
    """Seconds until the session's overload back-off ends, or None when it is not backing off."""
    ttl = queues.connection.ttl(OVERLOAD_KEY.format(session_id))
    return ttl if ttl and ttl > 0 else None
