"""The web role's Prometheus side: GET /metrics, and each request timed by its route."""

import time

from flask import Blueprint, Flask, g, request

from services.platform.metrics import http_answered

bp = Blueprint("metrics", __name__)

# The route label of a request no URL rule matched (a 404): one series for all of them.
UNMATCHED = "none"


def register(app: Flask) -> None:
    """Time every request by its URL rule."""

    @app.before_request
    def request_begin() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def request_timed(response):
        started = g.get("request_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            http_answered(request.method, route, response.status_code, time.perf_counter() - started)
        return response


from blueprints.metrics import routes  # noqa: E402,F401
