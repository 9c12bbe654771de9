"""Which engine hosts are alive, and which queue reaches the host that owns a session.

Each engine host keeps a heartbeat key in Redis. A session is owned by the host that
started it; jobs for it go to that host's own queue while the host is alive, and to the
shared engine queue (any host picks it up and takes ownership) otherwise.
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
