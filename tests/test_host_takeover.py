"""A dead engine host's queued jobs: the host that takes its sessions over takes the jobs
waiting on its queue too, each run once, with its retries left untouched."""

from __future__ import annotations

from rq import Retry

from extensions import queues
from jobs import engine as engine_jobs
from jobs.queues import engine_host_queue_name
from services.hosts.routing import host_jobs_take_over


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
