from blueprints.common import allowed_session_ids, auth_required, current_user
from blueprints.contract.native import AUTHED, native
from blueprints.contract.wiring import Answer
from blueprints.events import bp
from blueprints.schemas import events as schemas
from services.events.log import events_page


@bp.get("")
@native.operation(
    "listEvents",
    "Events",
    Answer(200, "The events after `after`, oldest first", schemas.EventPage),
    errors=(400, *AUTHED, 403, 404),
)
@auth_required
@native.request(query=schemas.EventsQuery)
def index(query: dict):
    """Replay events

    Every event your sessions published (the Socket.IO events, with the same payloads) kept
    `EVENT_RETENTION_DAYS`, oldest first. Keep the answer's `next` and ask `after` it next
    time: you get each event once, in order, whether you were away or not. Socket.IO
    payloads (`eventId`), SSE ids and webhooks (`X-Wagate-Event-Id`) carry the same cursors.
    """
    page = events_page(
        current_user(),
        after=query.get("after"),
        types=query.get("types"),
        session_id=query.get("sessionId"),
        limit=query.get("limit"),
        only_sessions=allowed_session_ids(),
    )
    return {"success": True, **page}
