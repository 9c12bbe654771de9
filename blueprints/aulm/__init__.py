"""aulm's API as a dialect of wagate: /v1/messages/send-text, /v1/messages/send-image and
/v1/sessions/{id}/status, answered in aulm's envelope, statuses and error codes."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("aulm", __name__)
api_rate_limit(bp)
# Its OpenAPI document and reference page: public, like the native ones.
pages = Blueprint("aulm_docs", __name__)

from blueprints.aulm import reference, routes  # noqa: E402,F401
