"""The event log over the API: a user's events, after a cursor, for consumers catching up."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("events", __name__)
api_rate_limit(bp)

from blueprints.events import routes  # noqa: E402,F401
