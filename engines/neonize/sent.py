"""Which of our message ids went out as which WhatsApp message id.

wagate picks a message's id (`wa_id`) before the first attempt, so that a retry can never
deliver it twice. neonize cannot send under a chosen id: its Go `SendMessage` builds the
whatsmeow request without one, and whatsmeow makes up its own. So the engine keeps this
ledger (DATA_DIR/engines/neonize/sent.db):

- an attempt is written before the send and completed with WhatsApp's id after it; a send
  repeating a completed `wa_id` returns the earlier result instead of sending again;
- receipts name WhatsApp's ids and are translated back to ours;
- an attempt left open means the process ended while WhatsApp had the message: whether it
  went out is unknown, so it is not sent again on its own (see NeonizeEngine.send_text).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    session_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    whatsapp_id TEXT,
    sent_at REAL,
    attempted_at REAL NOT NULL,
    PRIMARY KEY (session_id, wa_id)
);
CREATE INDEX IF NOT EXISTS ix_sent_whatsapp_id ON sent (session_id, whatsapp_id);
"""


@dataclass(frozen=True)
class SentEntry:
    whatsapp_id: str | None
    sent_at: float | None

    @property
    def completed(self) -> bool:
        return self.whatsapp_id is not None


class SentLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=15)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def get(self, session_id: str, wa_id: str) -> SentEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT whatsapp_id, sent_at FROM sent WHERE session_id = ? AND wa_id = ?", (session_id, wa_id)
            ).fetchone()
        return SentEntry(*row) if row else None

    def attempt(self, session_id: str, wa_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO sent (session_id, wa_id, attempted_at) VALUES (?, ?, ?)",
                (session_id, wa_id, time.time()),
            )

    def complete(self, session_id: str, wa_id: str, whatsapp_id: str, sent_at: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sent SET whatsapp_id = ?, sent_at = ? WHERE session_id = ? AND wa_id = ?",
                (whatsapp_id, sent_at, session_id, wa_id),
            )

    def forget(self, session_id: str, wa_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sent WHERE session_id = ? AND wa_id = ?", (session_id, wa_id))

    def our_id(self, session_id: str, whatsapp_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT wa_id FROM sent WHERE session_id = ? AND whatsapp_id = ?", (session_id, whatsapp_id)
            ).fetchone()
        return row[0] if row else None

    def prune(self, older_than_seconds: float) -> int:
        """Drop entries too old for a receipt or a retry to name them."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM sent WHERE attempted_at < ?", (time.time() - older_than_seconds,)
            ).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
