"""The threads of a process that work the webhook queue: `flask worker`'s and the embedded runtime's.

WEBHOOK_WORKERS RQ workers make the attempts, several at once (an attempt mostly waits on
the receiver), and a pump lines up, every WEBHOOK_POLL_SECONDS, the deliveries that fell due
(see services/webhooks/delivery.py). The pump runs in every such process: none waits for
another to notice a retry is due, or for a dead one's lock to lapse.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from rq.serializers import JSONSerializer

from extensions import queues
from jobs.queues import WEBHOOK_QUEUE
from jobs.worker import ThreadWorker
from services.webhooks.delivery import webhooks_pump

log = logging.getLogger(__name__)


class WebhookWorkers:
    def __init__(self, app: Flask) -> None:
        self.app = app
        with app.app_context():
            queue = queues.queue(WEBHOOK_QUEUE)
        self.workers = [
            ThreadWorker(
                [queue],
                connection=queues.worker_connection(app),
                serializer=JSONSerializer,
                poll_seconds=app.config["WORKER_POLL_SECONDS"],
            )
            for _ in range(app.config["WEBHOOK_WORKERS"])
        ]
        self.threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        for number, worker in enumerate(self.workers, 1):
            self._spawn(lambda worker=worker: self._work(worker), f"webhook-worker-{number}")
        self._spawn(self._pump_forever, "webhook-pump")

    def stop(self, timeout: float = 5) -> None:
        """Stop taking jobs and wait (up to `timeout` s) for the attempts under way."""
        self._stopping.set()
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            thread.join(timeout=timeout)

    def _work(self, worker: ThreadWorker) -> None:
        with self.app.app_context():
            worker.work(logging_level="WARNING")

    def _pump_forever(self) -> None:
        failing = False
        while not self._stopping.wait(self.app.config["WEBHOOK_POLL_SECONDS"]):
            try:
                with self.app.app_context():
                    webhooks_pump()
            except Exception:
                if not failing:  # once per outage, not every pass
                    log.exception("the webhook pump could not look for due deliveries; it keeps trying")
                failing = True
            else:
                if failing:
                    log.info("the webhook pump is looking for due deliveries again")
                failing = False

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)
