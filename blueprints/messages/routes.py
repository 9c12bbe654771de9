import functools

from blueprints.common import allowed_session_ids, auth_required, current_user, message_log_page, session_allowed
from blueprints.contract.native import AUTHED, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.media import media_response
from blueprints.messages import bp
from blueprints.schemas import messages as schemas
from models.base import isoformat
from services.messaging.history import message_get, message_media, messages_failed
from services.messaging.scheduling import scheduled_cancel, scheduled_list, scheduled_move
from services.messaging.stats import stats_get

MESSAGE_ERRORS = (*AUTHED, 403, 404)


def message_named(view):
    """Only for the caller's message the path names (if the API key may use its session):
    somebody else's is 404 before anything else about the request is looked at."""

    @functools.wraps(view)
    def wrapper(message_id, **kwargs):
        session_allowed(message_get(current_user(), message_id).session_id)
        return view(message_id=message_id, **kwargs)

    return wrapper


@bp.get("/stats")
@native.operation(
    "getMessageStats",
    "Messages",
    Answer(200, "Totals and the last 7 days (UTC), zeros for quiet days", schemas.Stats),
    errors=AUTHED,
)
@auth_required
def stats():
    """Message statistics

    Totals and the 7-day sent/delivered/read/failed chart.
    """
    return stats_get(current_user())


@bp.get("/failed")
@native.operation(
    "listFailedMessages", "Messages", Answer(200, "Newest first", schemas.FailedList), errors=(400, *AUTHED)
)
@auth_required
@native.request(query=schemas.FailedQuery)
def failed(query: dict):
    """Recently failed messages"""
    messages = messages_failed(current_user(), query.get("limit"), only_sessions=allowed_session_ids())
    return {"success": True, "count": len(messages), "messages": messages}


@bp.get("")
@native.operation(
    "listMessages", "Messages", Answer(200, "One page, newest first", schemas.MessagePage), errors=(400, *AUTHED, 403)
)
@auth_required
@native.request(query=schemas.MessagesQuery)
def index(query: dict):
    """The message log

    Newest first, filtered and paged by cursor (stable while messages arrive) or by page.
    """
    page = message_log_page(query)
    return {"success": True, **page}


@bp.get("/scheduled")
@native.operation(
    "listScheduledMessages",
    "Messages",
    Answer(200, "Soonest first", schemas.ScheduledList),
    errors=(400, *MESSAGE_ERRORS),
)
@auth_required
@native.request(query=schemas.ScheduledQuery)
def scheduled(query: dict):
    """Scheduled messages

    Messages waiting for their time, soonest first.
    """
    messages = scheduled_list(
        current_user(),
        session_id=query.get("sessionId"),
        limit=query.get("limit"),
        only_sessions=allowed_session_ids(),
    )
    return {"success": True, "count": len(messages), "messages": [_scheduled_view(m) for m in messages]}


@bp.patch("/<message_id:message_id>")
@native.operation(
    "rescheduleMessage",
    "Messages",
    Answer(200, "Moved", schemas.Scheduled),
    errors=(*WITH_BODY, *MESSAGE_ERRORS, 405, 409),
)
@auth_required
@message_named
@native.request(body=schemas.Reschedule)
def reschedule(message_id: str, body: dict):
    """Move a scheduled message

    Only while it is still scheduled (`409 NOT_SCHEDULED` once it went).
    """
    message = scheduled_move(current_user(), message_id, body["sendAt"])
    return {"success": True, **_scheduled_view(message)}


@bp.post("/<message_id:message_id>/cancel")
@native.operation(
    "cancelMessage",
    "Messages",
    Answer(200, "Cancelled: it is never sent and its quota slot comes back", schemas.Scheduled),
    errors=(*MESSAGE_ERRORS, 409),
)
@auth_required
def cancel(message_id: str):
    """Cancel a scheduled message

    It is never sent (its quota slot comes back); `409 NOT_SCHEDULED` once it went.
    """
    session_allowed(message_get(current_user(), message_id).session_id)
    message = scheduled_cancel(current_user(), message_id)
    return {"success": True, **_scheduled_view(message)}


def _scheduled_view(message) -> dict:
    return message.to_dict() | {"sendAt": isoformat(message.send_after)}


@bp.get("/<message_id:message_id>")
@native.operation(
    "getMessage",
    "Messages",
    Answer(200, "The message with its delivery timestamps", schemas.Message),
    errors=MESSAGE_ERRORS,
)
@auth_required
def show(message_id: str):
    """Show a message

    With its `sentAt`, `deliveredAt`, `readAt` and `failedAt`.
    """
    message = message_get(current_user(), message_id)
    session_allowed(message.session_id)
    return message.to_dict()


@bp.get("/<message_id:message_id>/media")
@native.operation(
    "getMessageMedia",
    "Messages",
    Answer(
        200,
        "The photo, video, audio or document, as an attachment unless a common image, video or audio format",
        schemas.MediaFile,
        media_type="*/*",
    ),
    errors=MESSAGE_ERRORS,
)
@auth_required
def media(message_id: str):
    """A message's file

    The photo, video, audio or document a message carries; its owner only.
    """
    message = message_get(current_user(), message_id)
    session_allowed(message.session_id)
    return media_response(message_media(message))
