from flask import Response, current_app, request

from blueprints.metrics import bp
from services.platform.metrics import metrics_authorize, metrics_exposition


@bp.get("/metrics")
def metrics():
    """Prometheus metrics of this web process (of every gunicorn worker, in multiprocess mode)."""
    metrics_authorize(request.headers.get("Authorization"), current_app.config["METRICS_TOKEN"])
    body, content_type = metrics_exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
