"""The self-hosted gateway's API (docs/reference/selfhosted-gateway-api.txt) as a dialect of wagate."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("selfhosted", __name__)
api_rate_limit(bp)

from blueprints.selfhosted import errors, routes  # noqa: E402,F401
