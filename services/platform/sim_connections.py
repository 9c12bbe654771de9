"""Which connection holds each simulated WhatsApp device, kept in Redis so that simulators
on every engine host see it: WhatsApp allows one live connection per paired device, and
the newest one replaces the others (engines/simulator.py acts on it).

One key per session names its live connection; a counter moves with every claim, so that a
simulator's ticker reads one key per tick and the holders only when something changed.
"""

from __future__ import annotations

import logging

from redis import Redis

from services.platform.store_outage import REDIS_DOWN

log = logging.getLogger(__name__)

HOLDER_KEY = "wagate:simulator:connection:{}"
CLAIMS_KEY = "wagate:simulator:connection-claims"


class RedisConnections:
    """The simulator's `connections` option over Redis. While Redis is out of reach the
    simulated WhatsApp goes on as it stood: a claim is lost (logged), holders are unknown
    (None: the connection keeps its session) and the count of claims stays put."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection
        self._claims = 0

    def claim(self, session_id: str, holder: str) -> None:
        try:
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.set(HOLDER_KEY.format(session_id), holder)
                pipe.incr(CLAIMS_KEY)
                pipe.execute()
        except REDIS_DOWN:
            log.warning("simulator: could not record %s as the connection of session %s", holder, session_id)

    def holders(self, session_ids: list[str]) -> list[str | None]:
        try:
            values = self.connection.mget([HOLDER_KEY.format(session_id) for session_id in session_ids])
        except REDIS_DOWN:
            return [None] * len(session_ids)
        return [value.decode() if isinstance(value, bytes) else value for value in values]

    def claims(self) -> int:
        try:
            self._claims = int(self.connection.get(CLAIMS_KEY) or 0)
        except REDIS_DOWN:
            pass
        return self._claims
