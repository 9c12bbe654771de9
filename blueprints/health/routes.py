from blueprints.contract.native import PUBLIC, native
from blueprints.contract.wiring import Answer
from blueprints.health import bp
from blueprints.schemas.service import Health
from services.platform.health import health_check


@bp.get("/healthz")
@native.operation(
    "health",
    "Service",
    Answer(200, "Database, queue and engine hosts are alive", Health),
    Answer(503, "One of them is not (see `checks`)", Health),
    security=PUBLIC,
)
def healthz():
    """Health

    Database, queue and engine-host liveness for load balancers and supervisors.
    """
    report = health_check()
    return report, 200 if report["status"] == "ok" else 503
