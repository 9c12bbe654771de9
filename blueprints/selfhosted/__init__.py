"""The self-hosted gateway's API (docs/reference/selfhosted-gateway-api.txt) as a dialect of wagate."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("selfhosted", __name__)
api_rate_limit(bp)
# Its reference page, at /docs/selfhosted beside wagate's own /docs.
pages = Blueprint("selfhosted_docs", __name__)

from blueprints.selfhosted import errors, pages_routes, routes  # noqa: E402,F401
