"""Which engine hosts are alive, and which queue reaches the host that owns a session.

Each engine host keeps a heartbeat key in Redis, with how many sessions it holds and how
many it is meant to hold (its capacity). A session is owned by the host that holds its
lease (services/hosts/leases.py); jobs for it go to that host's own queue while the host is
alive. A session to start that no living host owns is first named for the host with the
most room (services/hosts/leases.py: `session_place`); with no host alive, its jobs go to
the shared engine queue, which every host takes from.
"""

from __future__ import annotations

import json
import logging
import time

from flask import current_app
from rq import Queue
from rq.job import Job

from extensions import queues
from jobs.queues import ENGINE_QUEUE, engine_host_queue_name

log = logging.getLogger(__name__)

HOSTS_KEY = "wagate:engine-hosts"
HEARTBEAT_KEY = "wagate:engine-host:{}"
# The sessions each host reports it holds: changed as it takes or lets go of a lease, and
# gone with its heartbeat.
HELD_KEY = "wagate:engine-host:{}:sessions"


def _heartbeat_ttl() -> int:
    return max(3, int(current_app.config["ENGINE_HOST_HEARTBEAT_SECONDS"] * 3))


def host_heartbeat(
    host_id: str, *, engine: str, sessions: int, capacity: int | None = None, draining: bool = False
) -> None:
    ttl = _heartbeat_ttl()
    beat = {
        "engine": engine,
        "sessions": sessions,
        "capacity": capacity or current_app.config["ENGINE_HOST_CAPACITY"],
        "draining": draining,
        "at": time.time(),
    }
    with queues.connection.pipeline(transaction=True) as pipeline:
        pipeline.sadd(HOSTS_KEY, host_id)
        pipeline.set(HEARTBEAT_KEY.format(host_id), json.dumps(beat), ex=ttl)
        pipeline.expire(HELD_KEY.format(host_id), ttl)
        pipeline.execute()


def host_holds(host_id: str, session_ids: list[str], *, held: bool) -> None:
    """Report that the host took (`held`) or let go of these sessions."""
    if not session_ids:
        return
    key = HELD_KEY.format(host_id)
    with queues.connection.pipeline(transaction=True) as pipeline:
        if held:
            pipeline.sadd(key, *session_ids)
            pipeline.expire(key, _heartbeat_ttl())
        else:
            pipeline.srem(key, *session_ids)
        pipeline.execute()


def hosts_holding() -> dict[str, set[str]]:
    """What each living host reports it holds."""
    connection = queues.connection
    alive = list(hosts_alive())
    with connection.pipeline(transaction=False) as pipeline:
        for host_id in alive:
            pipeline.smembers(HELD_KEY.format(host_id))
        sets = pipeline.execute()
    return {
        host_id: {member.decode() if isinstance(member, bytes) else member for member in members}
        for host_id, members in zip(alive, sets, strict=True)
    }


def host_retire(host_id: str) -> None:
    with queues.connection.pipeline(transaction=True) as pipeline:
        pipeline.delete(HEARTBEAT_KEY.format(host_id), HELD_KEY.format(host_id))
        pipeline.srem(HOSTS_KEY, host_id)
        pipeline.execute()


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


def host_load(beat: dict) -> float:
    """How full a host is: the sessions it holds over those it is meant to hold."""
    return beat["sessions"] / max(1, beat.get("capacity") or 1)


def engine_queue_for(host_id: str | None) -> Queue:
    """The queue that reaches the session's owner `host_id`: its own while it is alive, the
    shared one otherwise."""
    if host_id and host_is_alive(host_id):
        return queues.queue(engine_host_queue_name(host_id))
    return queues.queue(ENGINE_QUEUE)


def host_jobs_take_over(dead_host_id: str, to_queue: Queue) -> int:
    """Move the jobs waiting on a dead host's own queue to `to_queue`; how many moved.

    Each job keeps its id, hash and retries left; only its `origin` changes to the new
    queue. A job moves in one transaction that watches the dead queue: should the host come
    back and take a job meanwhile, the move starts again without it, so no job runs twice or
    is lost. Jobs the dead host had started are left to RQ's clean-up of abandoned jobs.
    """
    dead = queues.queue(engine_host_queue_name(dead_host_id))
    if dead.name == to_queue.name:
        return 0
    moved: list[str] = []

    def move(pipeline) -> None:
        moved.clear()
        job_ids = [raw.decode() if isinstance(raw, bytes) else raw for raw in pipeline.lrange(dead.key, 0, -1)]
        if not job_ids:
            return
        job_keys = [Job.key_for(job_id) for job_id in job_ids]
        pipeline.watch(*job_keys)  # a job deleted meanwhile must not come back as a bare hash
        with queues.connection.pipeline(transaction=False) as look:  # one round trip for all
            for key in job_keys:
                look.exists(key)
            kept = [job_id for job_id, found in zip(job_ids, look.execute(), strict=True) if found]
        pipeline.multi()
        for job_id in job_ids:
            pipeline.lrem(dead.key, 1, job_id)
        for job_id in kept:
            pipeline.hset(Job.key_for(job_id), "origin", to_queue.name)
            pipeline.rpush(to_queue.key, job_id)
        pipeline.sadd(Queue.redis_queues_keys, to_queue.key)
        moved.extend(kept)

    queues.connection.transaction(move, dead.key)
    if moved:
        log.info("moved %d job(s) from dead engine host %s to %s", len(moved), dead_host_id, to_queue.name)
    return len(moved)


OVERLOAD_KEY = "wagate:overloaded:{}"


def session_overload_mark(session_id: str, seconds: int) -> None:
    """WhatsApp answered a session's send with "overloaded": new sends wait `seconds`."""
    queues.connection.set(OVERLOAD_KEY.format(session_id), 1, ex=max(1, int(seconds)))


def session_overloaded_for(session_id: str) -> int | None:
    """Seconds until the session's overload back-off ends, or None when it is not backing off."""
    ttl = queues.connection.ttl(OVERLOAD_KEY.format(session_id))
    return ttl if ttl and ttl > 0 else None
