"""The in-process roles: RQ worker and scheduler threads run jobs, and stop when asked."""

from __future__ import annotations

import threading
from datetime import timedelta

import fakeredis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import text

from extensions import db
from jobs.worker import ThreadScheduler, ThreadWorker
from roles.runtime import EmbeddedRuntime
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
