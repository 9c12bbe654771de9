"""Engine jobs sent to the host that owns a session, and the answers some of them give."""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import groupby

from rq.job import Job, JobStatus

from extensions import queues
from jobs import engine as engine_jobs
from models import Message, MessageStatus, WaSession
from models.base import as_utc
from services.errors import ApiError, Conflict, ServiceUnavailable
from services.governor.queue import API_LANE, SendQueue
from services.hosts.leases import session_place
from services.hosts.routing import engine_queue_for, host_is_alive, hosts_alive
from services.platform.outages import is_outage
from services.platform.waiting import wait_until

log = logging.getLogger(__name__)

# Set while a job telling the session's engine host to look at its send queue is on its
# way; the host clears it before it looks. Expires in case a job is lost.
SENDS_WAITING_KEY = "wagate:sends-waiting:{}"
SENDS_WAITING_SECONDS = 30


def message_enqueue(message: Message, session: WaSession) -> None:
    """Hand a persisted, committed message to the engine host that owns its session."""
    messages_enqueue(session, [message])


def messages_hand_off(session: WaSession, messages: list[Message]) -> bool:
    """`messages_enqueue`, for committed messages the database already answers for: when
    Redis cannot take them now, that is logged and they stay as stored, for the relay
    (services/messaging/relay.py) to line up once it is back. Whether they were handed over."""
    try:
        messages_enqueue(session, messages)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("session %s: %d message(s) stored, not handed over yet: %s", session.id, len(messages), exc)
        return False
    return True


def messages_enqueue(session: WaSession, messages: list[Message]) -> None:
    """Hand persisted, committed messages of one session to the engine host that owns it.

    Each goes straight into the session's send queue (services/governor/queue.py: on its
    lane, or held until its time when scheduled), and the host gets one job to look at the
    queue: the first hand-off since the host last looked enqueues it, later ones ride on
    it, so a burst of sends costs the host one job, and its send line takes every message
    that is ready. The database stays the record: a host rebuilds the queue from it when it
    takes the session up.
    """
    connection = queues.connection
    messages_line_up(SendQueue(connection, session.id), messages)
    if connection.set(SENDS_WAITING_KEY.format(session.id), 1, nx=True, ex=SENDS_WAITING_SECONDS):
        engine_queue_for(session.engine_host).enqueue(
            engine_jobs.engine_queue_nudge, session.id, result_ttl=0, failure_ttl=86400
        )


def messages_line_up(queue: SendQueue, messages: list[Message]) -> None:
    """Put queued (or scheduled) messages of one session in its send queue, in their order:
    each on the API's lane or its batch's (whose delay is the floor between its messages),
    a run of them on one lane in one push; a scheduled one held until it is due."""
    for (scheduled, (lane, floor)), run in groupby(
        messages, key=lambda message: (message.status == MessageStatus.SCHEDULED, _place(message))
    ):
        if scheduled:
            for message in run:
                queue.later(message.id, as_utc(message.send_after).timestamp(), lane=lane, floor_seconds=floor)
        else:
            queue.push_many([message.id for message in run], lane=lane, floor_seconds=floor)


def _place(message: Message) -> tuple[str, float]:
    """The message's lane and the least gap after it, in seconds (its batch's delay)."""
    return (f"batch:{message.batch_id}" if message.batch_id else API_LANE), (message.min_gap_ms or 0) / 1000


def sends_waiting_clear(session_id: str) -> None:
    """The engine host is about to look at the session's send queue: the next hand-off
    needs a job of its own again."""
    queues.connection.delete(SENDS_WAITING_KEY.format(session_id))


ENGINE_JOB_TIMEOUT = 120


def engine_enqueue(session: WaSession, job: Callable, *args: object) -> Job:
    """Send an engine job to the host that owns the session (after the caller committed);
    a start with no living owner goes to the host with the most room, named its owner."""
    owner = session.engine_host
    if job is engine_jobs.engine_session_start and not host_is_alive(owner):
        owner = session_place(session.id, hosts_alive())
    return engine_queue_for(owner).enqueue(
        job, args=args, job_timeout=ENGINE_JOB_TIMEOUT, result_ttl=300, failure_ttl=86400
    )


def engine_ask(session: WaSession, job: Callable, *args: object, seconds: float) -> object:
    """Run an engine job that answers (roles.engine_host._answer) and wait for its value.

    The engine's refusals become API errors: 503 for WhatsApp's side (worth a retry), 409
    for the session's state; 504 if the engine host does not answer in time.
    """
    queued = engine_enqueue(session, job, *args)
    finished = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    status = wait_until(lambda: queued.get_status(refresh=True), lambda status: status in finished, seconds)
    if status not in finished:
        queued.cancel()  # nobody waits for its answer any more
        raise ApiError(
            "The engine host did not answer in time; try again in a moment",
            error="Engine timeout",
            code="ENGINE_TIMEOUT",
            status=504,
        )
    if status != JobStatus.FINISHED:
        raise ServiceUnavailable("The engine host could not handle the request; try again", code="ENGINE_ERROR")
    answer = queued.return_value()
    if "error" in answer:
        if answer["transient"]:
            raise ServiceUnavailable(answer["message"], error="WhatsApp unavailable", code=answer["error"])
        raise Conflict(answer["message"], code=answer["error"])
    return answer["value"]


def engine_call(
    session: WaSession,
    action: str,
    *args: object,
    seconds: float,
    refusals: dict[str, tuple[int, str]] | None = None,
    **options: object,
) -> object:
    """One of the engine's calls (EngineHost.ENGINE_CALLS) on the host that owns `session`,
    answered. `refusals` give some of the engine's refusals their own status and title."""
    try:
        return engine_ask(session, engine_jobs.engine_call, session.id, action, list(args), options, seconds=seconds)
    except ApiError as exc:
        if refusals and exc.code in refusals:
            exc.status, exc.error = refusals[exc.code]
        raise
