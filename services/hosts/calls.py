"""Engine jobs sent to the host that owns a session, and the answers some of them give."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from rq.job import Job, JobStatus

from jobs import engine as engine_jobs
from models import Message, WaSession
from services.errors import ApiError, Conflict, ServiceUnavailable
from services.hosts.routing import engine_queue_for
from services.platform.waiting import wait_until


def message_enqueue(message: Message, session: WaSession, *, again: bool = False) -> None:
    """Hand a persisted, committed message to the engine host that owns its session
    (`again`: once more, for a rescheduled message)."""
    job_id = f"send-{message.id}" + (f"-{secrets.token_hex(4)}" if again else "")
    engine_queue_for(session.engine_host).enqueue(
        engine_jobs.engine_message_send, message.id, job_id=job_id, result_ttl=600, failure_ttl=86400
    )


ENGINE_JOB_TIMEOUT = 120


def engine_enqueue(session: WaSession, job: Callable, *args: object) -> Job:
    """Send an engine job to the host that owns the session (after the caller committed)."""
    return engine_queue_for(session.engine_host).enqueue(
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
