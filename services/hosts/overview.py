"""The engine hosts as an admin sees them: who is alive, how full each is, what waits."""

from __future__ import annotations

import time

from flask import current_app

from services.hosts.leases import sessions_named, sessions_orphaned_count
from services.hosts.routing import host_load, hosts_alive, hosts_holding


def hosts_overview() -> dict:
    """Each living host (by id): its engine, the sessions it reports holding over its
    capacity, whether it is draining and how long ago it beat; and how many sessions that
    should be online no living host holds."""
    alive = hosts_alive()
    holding = hosts_holding()
    named = sessions_named()
    now = time.time()
    hosts = [
        {
            "id": host_id,
            "engine": beat.get("engine"),
            "sessions": len(holding.get(host_id, ())),
            "named": named.get(host_id, 0),
            "capacity": beat.get("capacity") or current_app.config["ENGINE_HOST_CAPACITY"],
            "load": host_load({**beat, "sessions": len(holding.get(host_id, ()))}),
            "draining": bool(beat.get("draining")),
            "beatSecondsAgo": max(0.0, now - beat.get("at", now)),
        }
        for host_id, beat in sorted(alive.items())
    ]
    waiting = sessions_orphaned_count(alive)
    return {"hosts": hosts, "waiting": waiting, "leaseSeconds": current_app.config["SESSION_LEASE_SECONDS"]}
