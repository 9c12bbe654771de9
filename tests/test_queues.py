"""Redis through Sentinel: every client the app makes asks the Sentinels where the primary
is, with the same bounded waits as a client of REDIS_URL's server (tests/test_timeouts.py).
tests/test_sentinel.py kills a real primary under Sentinels."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from limits.storage import storage_from_string
from redis.sentinel import MasterNotFoundError, SentinelConnectionPool

from app import create_app
from extensions import queues
from jobs.queues import RedisQueues, sentinel_addresses
from services.platform.outages import outage_kind
from tests.helpers import app_config

# Ports nothing listens on: asking is refused at once, as with stopped Sentinels.
SENTINELS = "127.0.0.1:9, 127.0.0.1:10"
WHERE = [("127.0.0.1", 9), ("127.0.0.1", 10)]
# What REDIS_URL gives beside the Sentinels: the primary's password and database.
PRIMARY = "redis://:primary-secret@/2"


def _settings(tmp_path, **overrides) -> dict:
    return app_config(
        tmp_path, REDIS_SENTINELS=SENTINELS, REDIS_URL=PRIMARY, REDIS_SOCKET_TIMEOUT_SECONDS=4.0, **overrides
    )


def _asked(connection) -> list[tuple[str, int]]:
    return [
        (sentinel.connection_pool.connection_kwargs["host"], sentinel.connection_pool.connection_kwargs["port"])
        for sentinel in connection.connection_pool.sentinel_manager.sentinels
    ]


def test_the_app_and_its_workers_ask_the_sentinels_for_the_primary(tmp_path):
    app = create_app(_settings(tmp_path, REDIS_SENTINEL_PASSWORD="sentinel-secret"))
    with app.app_context():
        for connection in (queues.connection, queues.worker_connection(app)):
            pool = connection.connection_pool
            assert isinstance(pool, SentinelConnectionPool)
            assert pool.service_name == "wagate"
            assert sorted(_asked(connection)) == WHERE
            primary = pool.connection_kwargs
            assert (primary["socket_timeout"], primary["socket_connect_timeout"]) == (4.0, 2.0)
            assert (primary["db"], primary["password"], primary["retry"].get_retries()) == (2, "primary-secret", 2)
            for sentinel in pool.sentinel_manager.sentinels:
                asked = sentinel.connection_pool.connection_kwargs
                assert (asked["socket_timeout"], asked["socket_connect_timeout"]) == (4.0, 2.0)
                assert asked["password"] == "sentinel-secret"
        assert queues.worker_connection(app) is not queues.connection  # RQ's timeouts stay its own


def test_no_sentinel_answering_is_an_outage_within_a_second(tmp_path):
    app = create_app(_settings(tmp_path))
    with app.app_context():
        started = time.monotonic()
        with pytest.raises(MasterNotFoundError) as refused:
            queues.connection.ping()
        assert time.monotonic() - started < 1.0
        assert outage_kind(refused.value) == "queue"  # answered 503 QUEUE_UNAVAILABLE


def test_socketio_shares_its_events_through_the_primary_the_sentinels_name(tmp_path):
    app = create_app(_settings(tmp_path))
    manager = app.extensions["socketio"].server.manager
    assert manager.redis_url == "redis+sentinel://127.0.0.1:9,127.0.0.1:10/2/wagate"
    options = manager.redis_options
    assert (options["socket_timeout"], options["password"]) == (4.0, "primary-secret")
    assert options["sentinel_kwargs"]["socket_timeout"] == 4.0
    assert options["sentinel_kwargs"]["password"] is None  # the Sentinels have none here


def test_the_rate_limits_count_on_the_primary_the_sentinels_name(tmp_path):
    app = Flask(__name__)  # only the queues: the limiter keeps the options of every app it served
    app.config.update(_settings(tmp_path, RATELIMIT_STORAGE_URI="stand-in://", REDIS_SENTINEL_MASTER="gateway"))
    RedisQueues().init_app(app)
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis+sentinel://127.0.0.1:9,127.0.0.1:10/gateway"
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"], **app.config["RATELIMIT_STORAGE_OPTIONS"])
    assert storage.service_name == "gateway"
    assert storage.get_connection(readonly=True) is storage.storage  # counts read from the primary
    assert sorted(_asked(storage.storage)) == WHERE
    primary = storage.storage.connection_pool.connection_kwargs
    assert (primary["socket_timeout"], primary["db"], primary["password"]) == (4.0, 2, "primary-secret")
    for sentinel in storage.sentinel.sentinels:
        asked = sentinel.connection_pool.connection_kwargs
        assert (asked["socket_timeout"], asked.get("password")) == (4.0, None)


def test_sentinels_alone_need_no_redis_url(tmp_path):
    app = create_app(app_config(tmp_path, REDIS_SENTINELS="127.0.0.1:9"))
    assert app.config["REDIS_URL"] == "redis://"
    with app.app_context():
        assert queues.connection.connection_pool.connection_kwargs.get("db", 0) == 0
        assert _asked(queues.connection) == [("127.0.0.1", 9)]


def test_sentinel_addresses():
    assert sentinel_addresses("a:1, b:26380,") == [("a", 1), ("b", 26380)]
    assert sentinel_addresses("sentinel.internal") == [("sentinel.internal", 26379)]
    assert sentinel_addresses("[::1]:26381,[fd00::5]") == [("::1", 26381), ("fd00::5", 26379)]
    for wrong in ("a:port", ":1", "a:0", ",", "a:70000"):
        with pytest.raises(ValueError, match="REDIS_SENTINELS"):
            sentinel_addresses(wrong)
