from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("sessions", __name__)
api_rate_limit(bp)

from blueprints.sessions import routes  # noqa: E402,F401
