"""Jobs for the engine host: they run only in the process that owns the sessions."""

from flask import current_app

from jobs.context import app_job


def engine_host_current():
    """The engine host of this process (an `EngineHost`, registered in the app by the role)."""
    host = current_app.extensions.get("wagate.engine_host")
    if host is None:
        raise RuntimeError("This process runs no engine host; engine jobs belong on an engine host queue")
    return host


@app_job
def engine_session_start(session_id: str) -> None:
    engine_host_current().session_start(session_id)


@app_job
def engine_session_stop(session_id: str, reason: str) -> None:
    engine_host_current().session_stop(session_id, reason)


@app_job
def engine_session_logout(session_id: str, reason: str) -> None:
    engine_host_current().session_logout(session_id, reason)


@app_job
def engine_session_pair(session_id: str, token: str, phone: str | None) -> dict:
    return engine_host_current().session_pair(session_id, token, phone)


@app_job
def engine_session_pair_code(session_id: str, phone: str) -> dict:
    return engine_host_current().session_pair_code(session_id, phone)


@app_job
def engine_simulate_address_book(session_id: str, contacts: list[dict]) -> dict:
    return engine_host_current().simulate_address_book(session_id, contacts)


@app_job
def engine_simulate_presence(session_id: str, sender: str, state: str, chat: str | None = None) -> dict:
    return engine_host_current().simulate_presence(session_id, sender, state, chat)


@app_job
def engine_simulate_vote(session_id: str, sender: str, poll_wa_id: str, options: list[str]) -> dict:
    return engine_host_current().simulate_vote(session_id, sender, poll_wa_id, options)


@app_job
def engine_queue_nudge(session_id: str) -> None:
    engine_host_current().queue_nudge(session_id)


@app_job
def engine_call(session_id: str, action: str, args: list, options: dict) -> dict:
    return engine_host_current().engine_call(session_id, action, args, options)


@app_job
def engine_numbers_check(session_id: str, phones: list[str]) -> dict:
    return engine_host_current().numbers_check(session_id, phones)


@app_job
def engine_message_send(message_id: str) -> None:
    engine_host_current().message_accept(message_id)


@app_job
def engine_simulate_inbound(session_id: str, sender: str, message: str | dict, media_file: str | None = None) -> dict:
    return engine_host_current().simulate_inbound(session_id, sender, message, media_file)
