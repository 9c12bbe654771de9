"""RQ workers: `flask worker`'s, and those that run inside threads of one process.

RQ's own workers install signal handlers, which only the main thread may do, and its
scheduler forks a process; neither fits a thread, and the engine host must never fork
after neonize is imported. The thread subclasses keep RQ's job handling and drop just that.
"""

from __future__ import annotations

import threading
import time

from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.timeouts import TimerDeathPenalty

# How long a thread worker waits on Redis before it looks again whether it should stop.
POLL_SECONDS = 1.0
# How often a worker that runs no scheduler looks for a dead one to replace, and how long
# a scheduler lock may go unrefreshed (a live scheduler refreshes it every second) before
# its holder counts as dead.
SCHEDULER_RETRY_SECONDS = 5
SCHEDULER_DEAD_SECONDS = 15


class SchedulingWorker(Worker):
    """RQ's forking worker (`flask worker`), whose scheduler replaces a crashed one in seconds.

    RQ tries the scheduler lock (rq:scheduler-lock:<queue>, refreshed to 61 s every second)
    when the worker starts, then only on its 10-minute maintenance pass. A worker restarted
    after a `kill -9` finds the dead scheduler's lock still held, so for ~10 minutes no
    delayed job ran: no next chunk of a bulk send, no stats refresh. This one looks again
    every few seconds, and frees a lock its holder has stopped refreshing.
    """

    _scheduler_checked = 0.0

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is None:  # burst: one look at the queues, and no scheduler of our own
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while True:
            self.scheduler_take_over()
            wait = SCHEDULER_RETRY_SECONDS
            result = super().dequeue_job_and_maintain_ttl(wait, max_idle_time=wait)
            if result is not None:
                return result

    def scheduler_take_over(self) -> None:
        """Start our scheduler if none of ours runs and the queue's lock is free (or freed)."""
        scheduler = self.scheduler
        if scheduler is None or self._stop_requested:
            return
        if scheduler._process is not None and scheduler._process.is_alive():
            return
        if time.monotonic() - self._scheduler_checked < SCHEDULER_RETRY_SECONDS:
            return
        self._scheduler_checked = time.monotonic()
        for name in self.queue_names():
            scheduler_lock_free_if_dead(self.connection, name, lock_ttl=scheduler.interval + 60)
        scheduler.acquire_locks(auto_start=True)


def scheduler_lock_free_if_dead(connection, queue_name: str, *, lock_ttl: int) -> bool:
    """Delete the queue's scheduler lock if its holder has not refreshed it for a while."""
    key = RQScheduler.get_locking_key(queue_name)
    with connection.pipeline() as pipeline:
        holder, ttl = pipeline.get(key).ttl(key).execute()
    if holder is None or ttl < 0 or ttl > lock_ttl - SCHEDULER_DEAD_SECONDS:
        return False
    return release_lock(connection, key, holder.decode() if isinstance(holder, bytes) else holder)


class ThreadWorker(SimpleWorker):
    """Runs jobs in the calling thread; stops within `poll_seconds` of `stop()`.

    A job wakes the worker at once; only stopping waits for the current poll to end.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args, poll_seconds: float = POLL_SECONDS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.poll_seconds = poll_seconds

    def _install_signal_handlers(self) -> None:
        pass

    def stop(self) -> None:
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(self.poll_seconds, max_idle_time=self.poll_seconds)
            if result is not None:
                return result
        raise StopRequested()


class ThreadScheduler(RQScheduler):
    """Moves due delayed jobs onto their queues, from a thread instead of a forked process.

    RQ's loop sleeps a whole interval between passes; this one waits on an event, so
    `request_stop()` ends it at once instead of after the current second.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stop_event = threading.Event()

    def _install_signal_handlers(self) -> None:
        pass

    def request_stop(self, signum=None, frame=None) -> None:
        super().request_stop(signum, frame)
        self._stop_event.set()

    def work(self) -> None:
        self.register_birth()
        while not self._stop_requested:
            if self.should_reacquire_locks:
                self.acquire_locks()
            self.heartbeat()
            self.enqueue_scheduled_jobs()
            self._stop_event.wait(self.interval)
        self.stop()
