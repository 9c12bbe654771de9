"""The Redis connection and the RQ queues every role shares.

With REDIS_URL unset the app runs on an in-process Redis stand-in (fakeredis), so the
same queue, job and event code paths run in the embedded mode as in production.

Every connection to a real Redis has bounded waits (`redis_options`): connecting, each
command, a few quick retries of a dropped connection. RQ workers get a connection of their
own (`worker_connection`): RQ raises its socket timeout above the longest wait of its
blocking dequeue (minutes), which must not become every other command's.

With REDIS_SENTINELS set, every client (`redis_client`, and the rate limits' and Socket.IO's
through `sentinel_limits` and `sentinel_socketio`) asks the Sentinels where the primary
named REDIS_SENTINEL_MASTER is, and asks again once it is gone: a failover is a short
outage (services/platform/store_outage.py), not a reconfiguration. REDIS_URL then gives
only the database, user, password and TLS; its host and port are not used.
"""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel
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
# The port a Sentinel listens on when REDIS_SENTINELS names only its host.
SENTINEL_PORT = 26379


def redis_options(config) -> dict:
    """The keywords every Redis client of the app is made with (REDIS_* settings)."""
    return {
        "socket_connect_timeout": config["REDIS_CONNECT_TIMEOUT_SECONDS"],
        "socket_timeout": config["REDIS_SOCKET_TIMEOUT_SECONDS"],
        "socket_keepalive": True,
        "health_check_interval": config["REDIS_HEALTH_CHECK_SECONDS"],
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_SECONDS, base=RETRY_BASE_SECONDS), config["REDIS_RETRIES"]),
    }


def redis_client(config) -> redis.Redis:
    """A client of the app's Redis with a connection pool of its own: REDIS_URL's server, or
    with REDIS_SENTINELS the primary they name (asked again after a failover)."""
    if not config.get("REDIS_SENTINELS"):
        return redis.Redis.from_url(config["REDIS_URL"], **redis_options(config))
    sentinel = Sentinel(
        sentinel_addresses(config["REDIS_SENTINELS"]),
        sentinel_kwargs=_sentinel_kwargs(config),
        **redis_options(config),
        **_server_options(config),
    )
    return sentinel.master_for(config["REDIS_SENTINEL_MASTER"])


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """REDIS_SENTINELS ("host:port,host:port"; the port 26379 when left out) as pairs."""
    addresses = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, colon, port = item.rpartition(":")
        if not colon or "]" in port:  # no port: "host", or "[::1]"
            host, port = item, str(SENTINEL_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        addresses.append((host.removeprefix("[").removesuffix("]"), int(port)))
    if not addresses:
        raise ValueError("REDIS_SENTINELS names no Sentinel")
    return addresses


def sentinel_limits(config) -> tuple[str, dict]:
    """The rate limits' store (limits' Sentinel storage) and its options, for REDIS_SENTINELS:
    the primary only (a replica's counts lag behind), with the app's bounded waits."""
    hosts = ",".join(_host_port(address) for address in sentinel_addresses(config["REDIS_SENTINELS"]))
    options = {
        **redis_options(config),
        **_server_options(config),
        "sentinel_kwargs": _sentinel_kwargs(config),
        "use_replicas": False,
    }
    return f"redis+sentinel://{hosts}/{config['REDIS_SENTINEL_MASTER']}", options


def sentinel_socketio(config) -> tuple[str, dict]:
    """python-socketio's RedisManager URL and options for REDIS_SENTINELS."""
    hosts = ",".join(_host_port(address) for address in sentinel_addresses(config["REDIS_SENTINELS"]))
    server = _server_options(config)
    url = f"redis+sentinel://{hosts}/{server.pop('db', 0)}/{config['REDIS_SENTINEL_MASTER']}"
    return url, {**redis_options(config), **server, "sentinel_kwargs": _sentinel_kwargs(config)}


def _server_options(config) -> dict:
    """What REDIS_URL says besides where the server is (the Sentinels say that): the
    database, the user and password, TLS (rediss://)."""
    url = config.get("REDIS_URL") or "redis://"
    options = {key: value for key, value in parse_url(url).items() if key not in ("host", "port", "path")}
    if options.pop("connection_class", None) is not None:
        options["ssl"] = url.startswith("rediss://")
    return options


def _sentinel_kwargs(config) -> dict:
    """How the Sentinels themselves are asked: with the same bounded waits, each once per try
    (the next Sentinel is the retry, and a try of the primary asks them all again), with their
    own password (REDIS_SENTINEL_PASSWORD), never the primary's (limits would reuse that)."""
    options = redis_options(config)
    return {
        **{key: value for key, value in options.items() if key.startswith("socket_")},
        "retry": Retry(NoBackoff(), 0),
        "username": None,
        "password": config.get("REDIS_SENTINEL_PASSWORD") or None,
    }


def _host_port(address: tuple[str, int]) -> str:
    host, port = address
    return f"{host}:{port}"


class RedisQueues:
    """Holds one Redis connection per app and hands out JSON-serialised RQ queues."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        sentinels = app.config.get("REDIS_SENTINELS")
        if sentinels and not url:
            # The Sentinels say where Redis is; nothing else (database 0, no password) is needed.
            app.config["REDIS_URL"] = url = "redis://"
        if url:
            connection = redis_client(app.config)
            limits = app.config.get("RATELIMIT_STORAGE_URI")
            if limits in (STAND_IN_LIMITS, url) and sentinels:
                limits, options = sentinel_limits(app.config)
                app.config["RATELIMIT_STORAGE_URI"] = limits
                app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
            elif limits == STAND_IN_LIMITS:
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
        return redis_client(app.config)

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
