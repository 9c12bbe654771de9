"""The web role's Prometheus side: GET /metrics, each request timed by its route, and each
request's log context (its request id, and the session its URL names)."""

import time

from flask import Blueprint, Flask, g, request

from services.platform.logs import log_context_clear, log_context_start
from services.platform.metrics import http_answered

bp = Blueprint("metrics", __name__)

# The route label of a request no URL rule matched (a 404): one series for all of them.
UNMATCHED = "none"


def register(app: Flask) -> None:
    """Time every request and bind its log context (after errors.register: it sets the request id)."""

    @app.before_request
    def request_begin() -> None:
        g.request_started = time.perf_counter()
        log_context_start(request_id=g.get("request_id"), session_id=(request.view_args or {}).get("session_id"))

    @app.after_request
    def request_timed(response):
        started = g.get("request_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            http_answered(request.method, route, response.status_code, time.perf_counter() - started)
        return response

    @app.teardown_request
    def request_end(exc: BaseException | None) -> None:
        log_context_clear()


from blueprints.metrics import routes  # noqa: E402,F401
