"""An event's cursor: its id in the event log (services/events/log.py) as the API writes it.

Sixteen hexadecimal digits, so cursors sort as strings in the order their events happened
(a client may compare them as text), and say nothing a client should compute with.
"""

from __future__ import annotations

import re

# A positive 64-bit integer (what a database's BIGINT holds), in 16 digits.
CURSOR_PATTERN = "^[0-7][0-9a-f]{15}$"
_CURSOR = re.compile(CURSOR_PATTERN)
# Before every event: pages from the oldest event kept.
START = "0" * 16


def cursor_encode(event_id: int) -> str:
    return f"{event_id:016x}"


def cursor_decode(cursor: str) -> int | None:
    """The event id a cursor stands for; None when it is no cursor of ours."""
    return int(cursor, 16) if _CURSOR.match(cursor) else None
