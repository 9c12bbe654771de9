"""The Redis connection and the RQ queues every role shares.

With REDIS_URL unset the app runs on an in-process Redis stand-in (fakeredis), so the
same queue, job and event code paths run in the embedded mode as in production.

Every connection to a real Redis has bounded waits (`redis_options`): connecting, each
command, a few quick retries of a dropped connection. RQ workers get a connection of their
own (`worker_connection`): RQ raises its socket timeout above the longest wait of its
blocking dequeue (minutes), which must not become every other command's.
"""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer

DEFAULT_QUEUE = "wagate"
# Webhook attempts, apart from the default queue's bulk fan-out and stats.
WEBHOOK_QUEUE = "wagate-webhooks"
ENGINE_QUEUE = "wagate-engine"
ENGINE_HOST_QUEUE_PREFIX = "wagate-engine@"


def engine_host_queue_name(host_id: str) -> str:
    return f"{ENGINE_HOST_QUEUE_PREFIX}{host_id}"


# What RQ takes the stand-in's version to be (it has no INFO to ask).
RQ_STAND_IN_VERSION = (5, 0, 9)
# The rate limits' store that means "wherever the app's Redis is" when REDIS_URL is unset.
STAND_IN_LIMITS = "stand-in://"


# A dropped connection is retried after 50 ms, then 100 ms (doubling, at most this cap).
RETRY_BASE_SECONDS = 0.05
RETRY_CAP_SECONDS = 0.5


def redis_options(config) -> dict:
    """The keywords every Redis client of the app is made with (REDIS_* settings)."""
    return {
        "socket_connect_timeout": config["REDIS_CONNECT_TIMEOUT_SECONDS"],
        "socket_timeout": config["REDIS_SOCKET_TIMEOUT_SECONDS"],
        "socket_keepalive": True,
        "health_check_interval": config["REDIS_HEALTH_CHECK_SECONDS"],
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_SECONDS, base=RETRY_BASE_SECONDS), config["REDIS_RETRIES"]),
    }


class RedisQueues:
    """Holds one Redis connection per app and hands out JSON-serialised RQ queues."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            connection = redis.Redis.from_url(url, **redis_options(app.config))
            limits = app.config.get("RATELIMIT_STORAGE_URI")
            if limits == STAND_IN_LIMITS:
                app.config["RATELIMIT_STORAGE_URI"] = limits = url
            if limits.startswith(("redis://", "rediss://")):
                app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", redis_options(app.config))
        else:
            connection = _stand_in(fakeredis.FakeServer())
            if app.config.get("RATELIMIT_STORAGE_URI") == STAND_IN_LIMITS:
                # The rate limits count in the stand-in too, as they do in Redis in production
                # (limits' own in-memory store starts a thread to expire counters every 10 ms).
                app.config["RATELIMIT_STORAGE_URI"] = "redis://"
                app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": connection.connection_pool}
        app.extensions["wagate.redis"] = connection

    @property
    def connection(self) -> redis.Redis:
        return current_app.extensions["wagate.redis"]

    def worker_connection(self, app: Flask) -> redis.Redis:
        """A connection of its own for an RQ worker (or scheduler), to the app's Redis."""
        connection = app.extensions["wagate.redis"]
        if isinstance(connection, fakeredis.FakeStrictRedis):
            return _stand_in(connection.connection_pool.connection_kwargs["server"])
        return redis.Redis.from_url(app.config["REDIS_URL"], **redis_options(app.config))

    def queue(self, name: str = DEFAULT_QUEUE, connection: redis.Redis | None = None) -> Queue:
        return Queue(name, connection=connection or self.connection, serializer=JSONSerializer)


def _stand_in(server: fakeredis.FakeServer) -> fakeredis.FakeStrictRedis:
    connection = fakeredis.FakeStrictRedis(server=server)
    # RQ asks the server's version (INFO) once per connection and keeps it on the
    # connection; the stand-in has no INFO, so RQ would ask again for every queue and
    # take the answer it falls back to, kept here: it makes a worker wait with BLPOP,
    # which the stand-in wakes at once (its BLMOVE waits out the worker's poll).
    setattr(connection, "__rq_redis_server_version", RQ_STAND_IN_VERSION)
    return connection
