from flask import jsonify

from blueprints.health import bp
from services.platform.health import health_check


@bp.get("/healthz")
def healthz():
    """Database, queue and engine-host liveness for load balancers and supervisors."""
    report = health_check()
    return jsonify(report), 200 if report["status"] == "ok" else 503
