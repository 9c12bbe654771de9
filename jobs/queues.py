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
ENGINE_QUEUE = "wagate-engine"
ENGINE_HOST_QUEUE_PREFIX = "wagate-engine@"


def engine_host_queue_name(host_id: str) -> str:
    return f"{ENGINE_HOST_QUEUE_PREFIX}{host_id}"


class RedisQueues:
    """Holds one Redis connection per app and hands out JSON-serialised RQ queues."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            connection = redis.Redis.from_url(url, health_check_interval=30)
        else:
            connection = fakeredis.FakeStrictRedis(server=fakeredis.FakeServer())
        app.extensions["wagate.redis"] = connection

    @property
    def connection(self) -> redis.Redis:
        return current_app.extensions["wagate.redis"]

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        return Queue(name, connection=self.connection, serializer=JSONSerializer)
