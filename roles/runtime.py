"""Background roles run as threads of one process: the embedded mode (and the tests).

The same queues, jobs and events as in production, with an RQ worker thread for the
default queue, a scheduler thread for its delayed jobs, the webhook workers, the relay and an
engine host.
"""

from __future__ import annotations

import threading

from flask import Flask
from rq.serializers import JSONSerializer

from extensions import queues
from jobs.queues import DEFAULT_QUEUE
from jobs.worker import ThreadScheduler, ThreadWorker
from roles.engine_host import EngineHost
from roles.metrics import engine_host_unwatch, engine_host_watch
from roles.webhook_workers import WebhookWorkers
from services.messaging.bulk import bulk_resume
from services.messaging.relay import Relay
from services.messaging.stats import stats_schedule_periodic
from services.platform.retention import retention_schedule_periodic
from services.platform.settled import settled_listener_stop
from services.webhooks.delivery import webhook_deliveries_resume


def worker_startup() -> None:
    """What a starting worker picks up: unfinished bulk dispatching, webhook deliveries, the
    periodic stats and pruning."""
    bulk_resume()
    webhook_deliveries_resume()
    stats_schedule_periodic()
    retention_schedule_periodic()


class EmbeddedRuntime:
    def __init__(self, app: Flask, *, host_id: str = "embedded") -> None:
        self.app = app
        connection = queues.worker_connection(app)
        with app.app_context():
            default_queue = queues.queue(DEFAULT_QUEUE, connection)
        self.worker = ThreadWorker(
            [default_queue],
            connection=connection,
            serializer=JSONSerializer,
            poll_seconds=app.config["WORKER_POLL_SECONDS"],
        )
        self.scheduler = ThreadScheduler([default_queue], connection=connection, serializer=JSONSerializer)
        self.webhooks = WebhookWorkers(app)
        self.engine_host = EngineHost(app, host_id=host_id)
        self.relay = Relay(app)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.relay.start()
        with self.app.app_context():
            worker_startup()
        self.engine_host.start()
        engine_host_watch(self.engine_host)  # the embedded /metrics shows its sessions' queues
        self._spawn(self.engine_host.work, "engine-host-worker")
        self._spawn(self._work_default_queue, "rq-worker")
        self._spawn(self.scheduler.work, "rq-scheduler")
        self.webhooks.start()

    def stop(self) -> None:
        self.relay.stop()
        self.worker.stop()
        self.scheduler.request_stop()
        self.webhooks.stop()
        engine_host_unwatch(self.engine_host)
        self.engine_host.stop()
        settled_listener_stop(self.app.extensions)
        for thread in self._threads:
            thread.join(timeout=5)

    def _work_default_queue(self) -> None:
        with self.app.app_context():
            self.worker.work(logging_level="WARNING")

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
