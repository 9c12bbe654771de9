"""Wamux's API as a dialect of wagate: /api/v1/sessions, /api/v1/messages, /api/v1/keys."""

from flask import Blueprint
from werkzeug.routing import BaseConverter

from blueprints.common import api_rate_limit

bp = Blueprint("wamux", __name__)  # at /api/v1
pages = Blueprint("wamux_pages", __name__)  # its document and reference page, under /docs
api_rate_limit(bp)


class MessageId(BaseConverter):
    """A message id: any path part but the send routes' own (`media`, `audio`), so that
    GET /api/v1/messages/media is a method that route does not take (405), not a message."""

    regex = r"(?!(?:media|audio)$)[^/]+"


# Before the routes' rules are added (deferred functions run in the order recorded).
bp.record_once(lambda state: state.app.url_map.converters.setdefault("wamux_message_id", MessageId))

from blueprints.wamux import routes  # noqa: E402,F401
