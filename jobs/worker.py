"""RQ workers: `flask worker`'s, and those that run inside threads of one process.

RQ's own workers install signal handlers, which only the main thread may do, and its
scheduler forks a process; neither fits a thread, and the engine host must never fork
after neonize is imported. The thread subclasses keep RQ's job handling and drop just that.

Every one of them rides out a Redis restart: RQ's loop ends on the first Redis error
outside its wait for a job (a heartbeat, a job's bookkeeping, a maintenance pass), so the
steps that talk to Redis wait an outage out with backoff instead, and a worker whose
registration Redis lost (a restart without its data) registers again.
"""

from __future__ import annotations

import logging
import threading
import time

from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.timeouts import TimerDeathPenalty

from services.platform.store_outage import LONGEST_WAIT_SECONDS, REDIS_DOWN, StoreOutage

log = logging.getLogger(__name__)

# How long a thread worker waits on Redis before it looks again whether it should stop.
POLL_SECONDS = 1.0
# How often a worker that runs no scheduler looks for a dead one to replace, and how long
# a scheduler lock may go unrefreshed (a live scheduler refreshes it every second) before
# its holder counts as dead.
SCHEDULER_RETRY_SECONDS = 5
SCHEDULER_DEAD_SECONDS = 15
# How often a worker looks whether Redis still lists it (a restart without its data forgets
# every worker, and a worker it does not list is invisible to monitoring and /healthz).
REGISTRATION_CHECK_SECONDS = 10


class RidesOutRedis:
    """Mixed into RQ's workers (before the RQ class): the steps of the work loop that talk
    to Redis wait an outage out instead of ending the loop.

    RQ retries a failed wait for a job, but a heartbeat, a maintenance pass or the
    bookkeeping around a job that meets a dropped connection ends its loop ("found an
    unhandled exception, quitting"), and the role with it. Here each of those steps waits
    with backoff (LONGEST_WAIT_SECONDS at most between tries) until Redis answers, and gives
    way at once to a stop request. A job whose bookkeeping failed is not run again by the
    worker: RQ finds it in its started registry, and what it did is in the database.
    """

    max_connection_wait_time = LONGEST_WAIT_SECONDS  # RQ's own backoff in its wait for a job
    _stop_asked = False
    _registration_checked = 0.0

    @property
    def _outage(self) -> StoreOutage:
        outage = self.__dict__.get("_redis_outage")
        if outage is None:
            outage = self.__dict__["_redis_outage"] = StoreOutage(f"worker {self.name}: Redis", log)
        return outage

    def _stopping(self) -> bool:
        return self._stop_requested or self._stop_asked

    def request_stop(self, signum, frame) -> None:
        # RQ raises StopRequested from here when idle without noting it: note it for work().
        self._stop_asked = True
        super().request_stop(signum, frame)

    def _redis_wait(self, exc: BaseException) -> None:
        """Redis failed a step: wait before trying again; a stop request ends the wait (and the loop)."""
        deadline = time.monotonic() + self._outage.failed(exc)
        while True:
            if self._stopping():
                raise StopRequested()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

    def _through_outage(self, step, *args, **kwargs):
        while True:
            try:
                result = step(*args, **kwargs)
            except REDIS_DOWN as exc:
                self._redis_wait(exc)
                continue
            if self._outage.ongoing:
                self._outage.recovered()
                self._registration_check(force=True)
            return result

    def _registration_check(self, *, force: bool = False) -> None:
        """Register again if Redis no longer lists this worker (it lost its data)."""
        if not force and time.monotonic() - self._registration_checked < REGISTRATION_CHECK_SECONDS:
            return
        self._registration_checked = time.monotonic()
        try:
            if self.birth_date is None or self.connection.sismember(self.redis_workers_keys, self.key):
                return
            log.warning("worker %s: Redis lost its registration (restarted empty); registering again", self.name)
            self.connection.delete(self.key)
            self.register_birth()
        except REDIS_DOWN:
            self._registration_checked = 0.0  # down again: looked at once it answers

    def register_birth(self) -> None:
        try:
            super().register_birth()
        except ValueError:
            # Its own key, left by a loop that ended without its teardown (Redis was down).
            self.connection.delete(self.key)
            super().register_birth()

    def work(self, burst: bool = False, logging_level: str | None = None, **kwargs) -> bool:
        """RQ's work loop, begun again if it ends while no stop was asked (after an error
        RQ does not survive, or when Redis was down as it started or tore down)."""
        while True:
            try:
                worked = super().work(burst=burst, logging_level=logging_level, **kwargs)
            except REDIS_DOWN as exc:
                if burst:
                    raise
                if self._stopping():  # its teardown met the outage: its registration expires on its own
                    log.warning("worker %s: stopped without unregistering (Redis: %s)", self.name, exc)
                    return False
                try:
                    self._redis_wait(exc)
                except StopRequested:
                    return False
                continue
            if burst or self._stopping() or kwargs.get("max_jobs") or kwargs.get("max_idle_time"):
                return worked
            log.error("worker %s: the work loop ended unexpectedly; starting it again", self.name)
            deadline = time.monotonic() + LONGEST_WAIT_SECONDS
            while time.monotonic() < deadline:
                if self._stopping():
                    return worked
                time.sleep(0.1)

    def check_for_suspension(self, burst: bool) -> None:
        self._through_outage(super().check_for_suspension, burst)

    def run_maintenance_tasks(self) -> None:
        self._through_outage(super().run_maintenance_tasks)

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:  # queued on the caller's pipeline: no round trip here
            return super().heartbeat(timeout, pipeline)
        self._through_outage(super().heartbeat, timeout)
        self._registration_check()

    def maintain_heartbeats(self, job) -> None:
        # While a work horse runs its job: a missed heartbeat must not abandon the horse.
        try:
            super().maintain_heartbeats(job)
        except REDIS_DOWN as exc:
            self._outage.failed(exc)

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        except REDIS_DOWN as exc:
            log.warning("worker %s: Redis failed during job %s's bookkeeping", self.name, job.id)
            self._redis_wait(exc)
            self._through_outage(self.connection.ping)


class SchedulingWorker(RidesOutRedis, Worker):
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
            try:
                self.scheduler_take_over()
            except REDIS_DOWN:
                pass  # the wait for a job below meets the outage and waits it out
            wait = SCHEDULER_RETRY_SECONDS
            result = self._through_outage(super().dequeue_job_and_maintain_ttl, wait, max_idle_time=wait)
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


class ThreadWorker(RidesOutRedis, SimpleWorker):
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
        if timeout is None:  # burst: one look at the queues
            return self._through_outage(super().dequeue_job_and_maintain_ttl, timeout, max_idle_time)
        while not self._stop_requested:
            result = self._through_outage(
                super().dequeue_job_and_maintain_ttl, self.poll_seconds, max_idle_time=self.poll_seconds
            )
            if result is not None:
                return result
        raise StopRequested()


class ThreadScheduler(RQScheduler):
    """Moves due delayed jobs onto their queues, from a thread instead of a forked process.

    RQ's loop sleeps a whole interval between passes; this one waits on an event, so
    `request_stop()` ends it at once instead of after the current second. It waits a Redis
    outage out (RQ's forked scheduler dies of one, and its worker starts another), and, like
    SchedulingWorker, takes over within seconds a queue whose scheduler died.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stop_event = threading.Event()
        self._outage = StoreOutage(f"scheduler {self.name}: Redis", log)
        self._locks_checked = 0.0

    def _install_signal_handlers(self) -> None:
        pass

    def request_stop(self, signum=None, frame=None) -> None:
        super().request_stop(signum, frame)
        self._stop_event.set()

    def work(self) -> None:
        while not self._stop_requested:
            try:
                if self.last_heartbeat is None:
                    self.register_birth()
                self._locks_take_over()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except REDIS_DOWN as exc:
                self._stop_event.wait(self._outage.failed(exc))
                continue
            self._outage.recovered()
            self._stop_event.wait(self.interval)
        try:
            self.stop()
        except REDIS_DOWN:
            pass  # its locks expire on their own

    def _locks_take_over(self) -> None:
        """Take the locks of the queues it does not schedule yet: free now, or held by a
        scheduler that stopped refreshing them (RQ itself looks again after 10 minutes)."""
        if self._queue_names == self.acquired_locks:
            return
        if self.lock_acquisition_time is not None and time.monotonic() - self._locks_checked < SCHEDULER_RETRY_SECONDS:
            return
        self._locks_checked = time.monotonic()
        for name in self._queue_names - self.acquired_locks:
            scheduler_lock_free_if_dead(self.connection, name, lock_ttl=self.interval + 60)
        self.acquire_locks()
