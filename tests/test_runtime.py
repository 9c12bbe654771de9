"""The in-process roles: RQ worker and scheduler threads run jobs, stop when asked, and ride
out Redis outages; a job that meets a store outage runs again later."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import fakeredis
import redis.exceptions
import sqlalchemy.exc
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import text

from extensions import db
from jobs.context import app_job
from jobs.worker import ThreadScheduler, ThreadWorker
from roles.runtime import EmbeddedRuntime
from services.platform.store_outage import store_unreachable
from tests.helpers import wait_for

RAN: list[str] = []


def record(word: str) -> None:
    """A job: note that it ran."""
    RAN.append(word)


def _queue() -> Queue:
    connection = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return Queue("wagate", connection=connection, serializer=JSONSerializer)


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_thread_worker_runs_a_job_at_once_and_stops_within_its_poll():
    queue = _queue()
    worker = ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer, poll_seconds=0.1)
    thread = _in_thread(lambda: worker.work(logging_level="WARNING"))
    queue.enqueue(record, "now")
    wait_for(lambda: "now" in RAN, timeout=2, message="the job to run")
    worker.stop()
    thread.join(timeout=0.9)
    assert not thread.is_alive()


def test_the_scheduler_queues_a_delayed_job_once_it_is_due():
    queue = _queue()
    scheduler = ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer, interval=1)
    thread = _in_thread(scheduler.work)
    try:
        job = queue.enqueue_in(timedelta(seconds=1), record, "later")
        assert queue.job_ids == []
        wait_for(lambda: queue.job_ids == [job.id], timeout=5, message="the delayed job to be queued")
    finally:
        scheduler.request_stop()
        thread.join(timeout=2)


def test_a_stopped_scheduler_ends_without_sitting_out_its_interval():
    queue = _queue()
    scheduler = ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer, interval=30)
    thread = _in_thread(scheduler.work)
    wait_for(lambda: scheduler.acquired_locks == {"wagate"}, timeout=2, message="the scheduler's first pass")
    scheduler.request_stop()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert scheduler.acquired_locks == set()  # its lock is free for another scheduler


def test_a_stopped_embedded_runtime_leaves_no_thread_running(app):
    runtime = EmbeddedRuntime(app)
    runtime.start()
    runtime.stop()
    assert [thread.name for thread in runtime._threads if thread.is_alive()] == []
    assert len(runtime.webhooks.threads) == app.config["WEBHOOK_WORKERS"] + 1  # and the pump
    assert [thread.name for thread in runtime.webhooks.threads if thread.is_alive()] == []


def test_the_embedded_database_has_a_connection_for_each_busy_thread(app):
    """Request threads, send lines and the worker each hold a SQLite connection at once
    without queueing for the pool (or closing and reopening connections under load)."""
    busy = 20
    together = threading.Barrier(busy, timeout=5)
    failures: list[Exception] = []

    def hold_a_connection() -> None:
        try:
            with app.app_context():
                db.session.execute(text("SELECT count(*) FROM users")).scalar()
                together.wait()  # every thread holds its connection here at the same time
                db.session.rollback()
        except Exception as exc:  # reported below, from the test's thread
            failures.append(exc)

    threads = [_in_thread(hold_a_connection) for _ in range(busy)]
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    with app.app_context():
        assert db.engine.pool.checkedin() == busy  # kept for the next burst, not closed


# -- store outages --------------------------------------------------------------------------


def _outage_queue() -> tuple[Queue, fakeredis.FakeServer]:
    server = fakeredis.FakeServer()
    connection = fakeredis.FakeRedis(server=server)
    return Queue("wagate", connection=connection, serializer=JSONSerializer), server


def test_a_thread_worker_rides_out_a_redis_outage_and_stops_during_one():
    queue, server = _outage_queue()
    worker = ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer, poll_seconds=0.1)
    thread = _in_thread(lambda: worker.work(logging_level="WARNING"))
    wait_for(lambda: worker.get_state() == "idle", timeout=2, message="the worker to wait for jobs")
    server.connected = False
    time.sleep(1.5)  # heartbeats and waits for jobs fail meanwhile
    assert thread.is_alive()
    server.connected = True
    queue.enqueue(record, "after the outage")
    wait_for(lambda: "after the outage" in RAN, timeout=10, message="a job after the outage")

    server.connected = False
    worker.stop()
    thread.join(timeout=2)
    assert not thread.is_alive()


def test_a_worker_redis_forgot_registers_again(monkeypatch):
    monkeypatch.setattr("jobs.worker.REGISTRATION_CHECK_SECONDS", 0.1)
    queue, _ = _outage_queue()
    worker = ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer, poll_seconds=0.1)
    thread = _in_thread(lambda: worker.work(logging_level="WARNING"))
    try:
        wait_for(lambda: Worker.all(connection=queue.connection), timeout=2, message="the worker to register")
        queue.connection.flushall()  # Redis restarted without its data
        wait_for(
            lambda: [w.name for w in Worker.all(connection=queue.connection)] == [worker.name],
            timeout=5,
            message="the worker to register again",
        )
    finally:
        worker.stop()
        thread.join(timeout=2)


def test_the_scheduler_rides_out_a_redis_outage():
    queue, server = _outage_queue()
    scheduler = ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer, interval=1)
    thread = _in_thread(scheduler.work)
    try:
        wait_for(lambda: scheduler.acquired_locks == {"wagate"}, timeout=2, message="the scheduler's first pass")
        server.connected = False
        time.sleep(1.5)
        assert thread.is_alive()
        server.connected = True
        job = queue.enqueue_in(timedelta(seconds=1), record, "scheduled after the outage")
        wait_for(lambda: job.id in queue.job_ids, timeout=10, message="the delayed job to be queued")
    finally:
        scheduler.request_stop()
        thread.join(timeout=2)


def test_a_scheduler_takes_over_a_queue_whose_scheduler_stopped_refreshing_its_lock(monkeypatch):
    monkeypatch.setattr("jobs.worker.SCHEDULER_RETRY_SECONDS", 0.2)
    queue, _ = _outage_queue()
    dead = ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer, interval=1)
    assert dead.acquire_locks() == {"wagate"}  # and it never refreshes it: its host died
    queue.connection.expire(dead.get_locking_key("wagate"), 61 - 16)  # not refreshed for 16 s
    scheduler = ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer, interval=1)
    thread = _in_thread(scheduler.work)
    try:
        wait_for(lambda: scheduler.acquired_locks == {"wagate"}, timeout=3, message="the lock to be taken over")
    finally:
        scheduler.request_stop()
        thread.join(timeout=2)


@app_job
def database_down_job() -> None:
    """A job: meets a database outage."""
    RAN.append("tried")
    raise sqlalchemy.exc.OperationalError("SELECT 1", None, Exception("connection refused"))


@app_job
def broken_job() -> None:
    """A job: a bug."""
    raise ValueError("a bug")


def test_a_job_that_meets_a_store_outage_runs_again_later_and_a_bug_fails(app):
    queue, _ = _outage_queue()
    ThreadScheduler([queue], connection=queue.connection, serializer=JSONSerializer).acquire_locks()
    worker = ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer, poll_seconds=0.1)
    outage = queue.enqueue(database_down_job)
    bug = queue.enqueue(broken_job)
    with app.app_context():
        worker.work(burst=True, logging_level="WARNING")
    outage.refresh()
    assert outage.get_status() == "scheduled"  # not failed: it runs again in 2 s
    assert outage.number_of_retries == 1
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [outage.id]
    assert bug.get_status(refresh=True) == "failed"


def test_a_job_on_a_queue_no_scheduler_serves_fails_rather_than_waiting_for_none(app):
    """(The webhook queue: its deliveries are lined up again from the database.)"""
    queue, _ = _outage_queue()
    worker = ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer, poll_seconds=0.1)
    outage = queue.enqueue(database_down_job)
    with app.app_context():
        worker.work(burst=True, logging_level="WARNING")
    assert outage.get_status(refresh=True) == "failed"
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []


def test_store_outages_are_told_from_bugs():
    refused = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    assert store_unreachable(refused)
    assert store_unreachable(sqlalchemy.exc.OperationalError("SELECT 1", None, Exception("server closed")))
    wrapped = RuntimeError("while applying")
    wrapped.__cause__ = refused
    assert store_unreachable(wrapped)
    assert not store_unreachable(ValueError("a bug"))
    assert not store_unreachable(sqlalchemy.exc.IntegrityError("INSERT", None, Exception("duplicate")))
