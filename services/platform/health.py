"""Liveness of what the service depends on."""

from __future__ import annotations

from sqlalchemy import text

from extensions import db, queues
from services.hosts.routing import hosts_alive


def health_check() -> dict:
    checks: dict[str, dict] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        db.session.rollback()
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        queues.connection.ping()
        checks["queue"] = {"ok": True}
        hosts = hosts_alive()
        checks["engineHosts"] = {"ok": bool(hosts), "alive": sorted(hosts)}
    except Exception as exc:
        checks["queue"] = {"ok": False, "error": type(exc).__name__}
        checks["engineHosts"] = {"ok": False, "alive": []}
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}
