"""The legacy single-session API (/api/whatsapp/*) of the WAMessenger documentation."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("whatsapp", __name__)
api_rate_limit(bp)

from blueprints.whatsapp import routes  # noqa: E402,F401
