"""The engine host's event spool: what WhatsApp reported while the store was out of reach.

Receipts, inbound messages, session status changes and the send lines' outcomes that
cannot be written because PostgreSQL (or Redis, which publishes them) is down are kept
here, in their order, in a SQLite file of the host's own (DATA_DIR/spool/<host>.db; every
write is flushed to disk before it counts), and applied from it once the store answers,
before anything newer. A host that restarts applies what its spool still holds.

Applying an event twice changes nothing (a receipt only moves a message forward, an inbound
message is stored once by its WhatsApp id), so an entry is removed only after it is
applied: a crash in between applies it again, never loses it.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from engines import EngineEvent, EngineEventKind
from roles.engine_events import SendsSettled
from services.messaging.lifecycle import SendSettled

SCHEMA = "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL)"

SpoolItem = EngineEvent | SendsSettled


def spool_path(data_dir: str | Path, host_id: str) -> Path:
    return Path(data_dir) / "spool" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', host_id)}.db"


class EventSpool:
    """An ordered, durable list of engine events waiting for the store. The file is opened
    (and made) only when something is spooled, or when one is left from an earlier run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._count = 0
        if path.exists():
            self._open()
            self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]

    @property
    def pending(self) -> int:
        """How many entries wait (read without a lock: a send line only asks whether any do)."""
        return self._count

    def add(self, items: list[SpoolItem]) -> int:
        """Append items in their order, flushed to disk before returning; how many were added."""
        rows = [(item_encode(item),) for item in items]
        if not rows:
            return 0
        with self._lock:
            self._open()
            with self._db:
                self._db.executemany("INSERT INTO spool (item) VALUES (?)", rows)
            self._count += len(rows)
        return len(rows)

    def head(self, limit: int) -> list[tuple[int, SpoolItem]]:
        """The oldest entries, up to `limit`: (seq, item)."""
        with self._lock:
            if not self._count:
                return []
            rows = self._db.execute("SELECT seq, item FROM spool ORDER BY seq LIMIT ?", (limit,)).fetchall()
            if not rows:
                self._count = 0
        return [(seq, item_decode(item)) for seq, item in rows]

    def remove(self, seqs: list[int]) -> None:
        """Entries applied (or given up on): gone from the spool."""
        if not seqs:
            return
        with self._lock, self._db:
            removed = self._db.executemany("DELETE FROM spool WHERE seq = ?", [(seq,) for seq in seqs]).rowcount
            self._count = max(0, self._count - removed)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=15)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed entry survives a power cut
        self._db.execute(SCHEMA)
        self._db.isolation_level = "DEFERRED"


def item_encode(item: SpoolItem) -> str:
    if isinstance(item, SendsSettled):
        record = {
            "type": "sends",
            "session": item.session_id,
            "sends": [[s.message_id, s.status, s.at, s.error_code, s.error] for s in item.sends],
            "codes": item.codes,
        }
    else:
        record = {"type": "event", "kind": item.kind.value, "session": item.session_id, "data": item.data}
    return json.dumps(_tagged(record), separators=(",", ":"))


def item_decode(text: str) -> SpoolItem:
    record = _untagged(json.loads(text))
    if record["type"] == "sends":
        sends = [SendSettled(*fields) for fields in record["sends"]]
        item = SendsSettled(record["session"], sends, record["codes"])
        item.written.set()  # nobody waits for a spooled group
        return item
    return EngineEvent(kind=EngineEventKind(record["kind"]), session_id=record["session"], data=record["data"])


# JSON has no dates or bytes: they are written as {"$datetime": ISO 8601} and {"$bytes": base64}.
def _tagged(value):
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(key): _tagged(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    return value


def _untagged(value):
    if isinstance(value, dict):
        if len(value) == 1 and "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if len(value) == 1 and "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        return {key: _untagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untagged(item) for item in value]
    return value
