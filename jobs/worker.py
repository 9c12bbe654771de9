"""RQ workers that run inside threads of one process (the embedded mode and the engine host).

RQ's own workers install signal handlers, which only the main thread may do, and its
scheduler forks a process; neither fits a thread, and the engine host must never fork
after neonize is imported. These subclasses keep RQ's job handling and drop just that.
"""

from __future__ import annotations

from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

POLL_SECONDS = 1


class ThreadWorker(SimpleWorker):
    """Runs jobs in the calling thread; stops within a second of `stop()`."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def stop(self) -> None:
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            if result is not None:
                return result
        raise StopRequested()


class ThreadScheduler(RQScheduler):
    """Moves due delayed jobs onto their queues, from a thread instead of a forked process."""

    def _install_signal_handlers(self) -> None:
        pass
