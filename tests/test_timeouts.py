"""Every wait on the database and on Redis is bounded, so an outage is an answer within
seconds (503), never a hung request: what each role's connections are made with.
tests/test_outages.py checks the same against real servers that stop."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from rq import Worker

from app import create_app
from extensions import db, queues
from jobs.queues import DEFAULT_QUEUE
from services.events.stream import STREAM_KEY, stream_read
from tests.helpers import app_config

# A port nothing listens on: connecting is refused at once, as with a stopped server.
NOWHERE = "redis://127.0.0.1:9/0"


def test_postgresql_connections_have_connect_and_statement_timeouts(tmp_path):
    app = create_app(
        app_config(
            tmp_path,
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://wagate@127.0.0.1:9/wagate",
            DATABASE_CONNECT_TIMEOUT_SECONDS=3,
            DATABASE_STATEMENT_TIMEOUT_SECONDS=12.5,
        )
    )
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True
    assert options["pool_timeout"] == 5.0
    assert options["connect_args"]["connect_timeout"] == 3
    assert options["connect_args"]["options"] == "-c statement_timeout=12500"
    with app.app_context():
        assert db.engine.pool.timeout() == 5.0
        started = time.monotonic()
        with pytest.raises(Exception) as refused:
            db.engine.connect()
        assert time.monotonic() - started < 3
        assert "Connection refused" in str(refused.value) or "connection failed" in str(refused.value)


def test_sqlite_keeps_its_own_pool_settings(app):
    with app.app_context():
        assert db.engine.pool.timeout() == 5.0
        assert "connect_args" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]


@pytest.fixture
def redis_app(tmp_path):
    """An app configured for a Redis that is not running."""
    app = create_app(
        app_config(tmp_path, REDIS_URL=NOWHERE, RATELIMIT_STORAGE_URI="stand-in://", REDIS_SOCKET_TIMEOUT_SECONDS=4.0)
    )
    return app


def test_a_stopped_redis_is_an_error_at_once_not_a_hang(redis_app):
    with redis_app.app_context():
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            queues.connection.ping()
        assert time.monotonic() - started < 1.0  # two quick retries, 50 and 100 ms apart


def test_every_redis_client_of_the_app_has_bounded_waits(redis_app):
    with redis_app.app_context():
        app_pool = queues.connection.connection_pool.connection_kwargs
        assert app_pool["socket_timeout"] == 4.0
        assert app_pool["socket_connect_timeout"] == 2.0
        assert app_pool["health_check_interval"] == 30
        assert app_pool["retry"].get_retries() == 2
    limits = redis_app.config["RATELIMIT_STORAGE_OPTIONS"]
    assert (limits["socket_timeout"], limits["socket_connect_timeout"]) == (4.0, 2.0)
    manager = redis_app.extensions["socketio"].server.manager
    assert manager.redis_url == NOWHERE
    assert (manager.redis_options["socket_timeout"], manager.redis_options["socket_connect_timeout"]) == (4.0, 2.0)


def test_an_rq_worker_waits_on_a_connection_of_its_own(app):
    """RQ raises its connection's socket timeout to minutes for its blocking dequeue: that must
    not become the timeout of the app's own commands (here on the stand-in, as RQ needs a
    server to start a worker)."""
    with app.app_context():
        before = queues.connection.connection_pool.connection_kwargs.get("socket_timeout")
        connection = queues.worker_connection(app)
        worker = Worker([queues.queue(DEFAULT_QUEUE, connection)], connection=connection)
        assert worker.connection.connection_pool.connection_kwargs["socket_timeout"] > 60
        assert queues.connection.connection_pool.connection_kwargs.get("socket_timeout") == before
        # The same Redis all the same: what one enqueues, the other's worker sees.
        queues.queue().enqueue("jobs.stats.stats_aggregate_all")
        assert worker.queues[0].count == 1
        queues.queue().empty()


@pytest.mark.parametrize("config_overrides", [{"REDIS_SOCKET_TIMEOUT_SECONDS": 0.2}])
def test_an_event_stream_waits_in_slices_shorter_than_the_socket_timeout(app):
    """A Server-Sent Events client waits for events longer than a Redis command may take:
    the wait is made of short blocks, and an event that comes during any of them is read."""
    with app.app_context():
        connection = queues.connection
        calls = []
        xread = connection.xread

        def counted(*args, **kwargs):
            calls.append(kwargs["block"])
            return xread(*args, **kwargs)

        connection.xread = counted
        started = time.monotonic()
        assert stream_read("s1", "0-0", 0.5) == []
        assert 0.5 <= time.monotonic() - started < 1.5
        assert len(calls) >= 3 and max(calls) <= 100

        def later() -> None:
            time.sleep(0.3)
            connection.xadd(STREAM_KEY.format("s1"), {"event": "qr", "data": "{}"})

        thread = threading.Thread(target=later)
        thread.start()
        events = stream_read("s1", "0-0", 2.0)
        thread.join()
        assert [event.event for event in events] == ["qr"]
