"""Wallm's API as a dialect of wagate: POST /v1/sessions/{id}/messages/text with X-Api-Key."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("wallm", __name__)
api_rate_limit(bp)

from blueprints.wallm import routes  # noqa: E402,F401
