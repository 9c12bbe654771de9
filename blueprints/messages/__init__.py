from flask import Blueprint
from werkzeug.routing import BaseConverter

from blueprints.common import api_rate_limit


class MessageIdConverter(BaseConverter):
    """A message's id in a path: any id but the names of the log's fixed routes. So every id
    gets the same routes (and one `Allow`), and PATCH /api/messages/failed is a method
    /failed does not take (405), not a search for a message called "failed"."""

    regex = r"(?!(?:failed|stats|scheduled)$)[^/]+"


bp = Blueprint("messages", __name__)
bp.record_once(lambda state: state.app.url_map.converters.setdefault("message_id", MessageIdConverter))
api_rate_limit(bp)

from blueprints.messages import routes  # noqa: E402,F401
