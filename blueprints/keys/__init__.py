"""API keys over the API: create (shown once), list and revoke."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("keys", __name__)
api_rate_limit(bp)

from blueprints.keys import routes  # noqa: E402,F401
