"""The Redis connection and the RQ queues every role shares.

With REDIS_URL unset the app runs on an in-process Redis stand-in (fakeredis), so the
same queue, job and event code paths run in the embedded mode as in production.
"""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app
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


class RedisQueues:
    """Holds one Redis connection per app and hands out JSON-serialised RQ queues."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            connection = redis.Redis.from_url(url, health_check_interval=30)
            if app.config.get("RATELIMIT_STORAGE_URI") == STAND_IN_LIMITS:
                app.config["RATELIMIT_STORAGE_URI"] = url
        else:
            connection = fakeredis.FakeStrictRedis(server=fakeredis.FakeServer())
            # RQ asks the server's version (INFO) once per connection and keeps it on the
            # connection; the stand-in has no INFO, so RQ would ask again for every queue and
            # take the answer it falls back to, kept here: it makes a worker wait with BLPOP,
            # which the stand-in wakes at once (its BLMOVE waits out the worker's poll).
            setattr(connection, "__rq_redis_server_version", RQ_STAND_IN_VERSION)
            if app.config.get("RATELIMIT_STORAGE_URI") == STAND_IN_LIMITS:
                # The rate limits count in the stand-in too, as they do in Redis in production
                # (limits' own in-memory store starts a thread to expire counters every 10 ms).
                app.config["RATELIMIT_STORAGE_URI"] = "redis://"
                app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": connection.connection_pool}
        app.extensions["wagate.redis"] = connection

    @property
    def connection(self) -> redis.Redis:
        return current_app.extensions["wagate.redis"]

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        return Queue(name, connection=self.connection, serializer=JSONSerializer)
