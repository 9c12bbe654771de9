"""A dead engine host's queued jobs: the host that takes its sessions over takes the jobs
waiting on its queue too, each run once, with its retries left untouched."""

from __future__ import annotations

from rq import Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select, update

from extensions import db, queues
from jobs import engine as engine_jobs
from jobs.queues import engine_host_queue_name
from models import Message, WaSession
from roles.runtime import EmbeddedRuntime
from services.hosts.routing import HEARTBEAT_KEY, host_heartbeat, host_jobs_take_over
from tests.helpers import wait_for


def _inbound_texts(app, session_id: str) -> list[str]:
    with app.app_context():
        query = select(Message.body).where(Message.session_id == session_id, Message.direction == "inbound")
        return list(db.session.scalars(query))


def _owner(app, session_id: str) -> str | None:
    with app.app_context():
        return db.session.get(WaSession, session_id).engine_host


def _queue_a_job_for_a_dead_host(app, session_id: str, dead_host: str, text: str) -> str:
    """The session is the dead host's, a job for it waits on its queue, its heartbeat is gone."""
    with app.app_context():
        host_heartbeat(dead_host, engine="simulator", sessions=1)
        db.session.execute(update(WaSession).where(WaSession.id == session_id).values(engine_host=dead_host))
        db.session.commit()
        job = queues.queue(engine_host_queue_name(dead_host)).enqueue(
            engine_jobs.engine_simulate_inbound, args=(session_id, "447911123456", text), retry=Retry(max=3)
        )
        queues.connection.delete(HEARTBEAT_KEY.format(dead_host))  # as if it expired
        return job.id


def _job(app, job_id: str) -> Job:
    with app.app_context():
        return Job.fetch(job_id, connection=queues.connection, serializer=JSONSerializer)


def _dead_queue_count(app, dead_host: str) -> int:
    with app.app_context():
        return queues.queue(engine_host_queue_name(dead_host)).count


def test_a_running_host_adopting_a_dead_hosts_sessions_runs_its_queued_jobs_once(app, shop, runtime):
    job_id = _queue_a_job_for_a_dead_host(app, shop, "gone", "queued on the dead host")

    wait_for(lambda: _job(app, job_id).is_finished, message="the dead host's job to run on the adopter")
    assert _owner(app, shop) == runtime.engine_host.id
    job = _job(app, job_id)
    assert job.origin == engine_host_queue_name(runtime.engine_host.id)
    assert job.retries_left == 3
    assert _dead_queue_count(app, "gone") == 0
    with app.app_context():
        runtime.engine_host.adopt_orphans()  # a later adoption finds nothing more to move
    wait_for(lambda: "queued on the dead host" in _inbound_texts(app, shop), message="the message the job received")
    assert _inbound_texts(app, shop).count("queued on the dead host") == 1


def test_a_starting_host_takes_over_a_dead_hosts_queue_with_its_sessions(app, shop, runtime):
    runtime.stop()
    job_id = _queue_a_job_for_a_dead_host(app, shop, "gone", "waiting for a host")
    assert not _job(app, job_id).is_finished

    adopter = EmbeddedRuntime(app, host_id="adopter")
    try:
        adopter.start()
        wait_for(lambda: _job(app, job_id).is_finished, message="the dead host's job to run on the adopter")
        assert _owner(app, shop) == "adopter"
        job = _job(app, job_id)
        assert job.origin == engine_host_queue_name("adopter")
        assert job.retries_left == 3
        assert _dead_queue_count(app, "gone") == 0
        wait_for(lambda: "waiting for a host" in _inbound_texts(app, shop), message="the message the job received")
        assert _inbound_texts(app, shop).count("waiting for a host") == 1
    finally:
        adopter.stop()


def test_taking_over_moves_the_waiting_jobs_in_order_and_drops_those_gone(app):
    with app.app_context():
        dead = queues.queue(engine_host_queue_name("gone"))
        target = queues.queue(engine_host_queue_name("adopter"))
        first, vanished, last = (
            dead.enqueue(engine_jobs.engine_queue_nudge, args=(name,), retry=Retry(max=2))
            for name in ("first", "vanished", "last")
        )
        queues.connection.delete(vanished.key)  # its hash expired while it waited

        assert host_jobs_take_over("gone", target) == 2
        assert dead.count == 0
        assert target.job_ids == [first.id, last.id]
        assert not queues.connection.exists(vanished.key)
        for job in target.jobs:
            assert (job.origin, job.retries_left, job.get_status()) == (target.name, 2, "queued")
        assert host_jobs_take_over("gone", target) == 0  # the dead host comes back to an empty queue
        target.empty()
