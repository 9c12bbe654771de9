from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("messages", __name__)
api_rate_limit(bp)

from blueprints.messages import routes  # noqa: E402,F401
