"""Wamux's API as a dialect of wagate: /api/v1/sessions, /api/v1/messages, /api/v1/keys."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("wamux", __name__)  # at /api/v1
pages = Blueprint("wamux_pages", __name__)  # its document and reference page, under /docs
api_rate_limit(bp)

from blueprints.wamux import routes  # noqa: E402,F401
