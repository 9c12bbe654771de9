"""What a node keeps that another node may need, behind one interface with two homes.

- Files: message media, the simulator's paired devices and groups, named by a path
  ("outgoing/<message id>", "simulator/<sessionId>.json").
- The receipts the simulated WhatsApp still owes its sessions.
- The neonize engine's sent ledger (which of our message ids went out as which WhatsApp id).
- Where the neonize engine keeps each session's WhatsApp device (`device_store_url`).

`LocalState` keeps them under a folder of this machine (DATA_DIR): the embedded default,
and enough for nodes that share one disk. With PostgreSQL as the database they live in its
tables instead (services/platform/shared_state.py), so a session taken over by a node with
another disk keeps its pairing, its queued sends and its media. Engines get one of the two
from whoever builds them and never ask which.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

# Receipts reported this recently are reported again to a session that comes back (the
# engine host may have died before writing them; writing one twice changes nothing).
RECEIPT_REDELIVER_SECONDS = 30.0
# How often the receipts reported longer ago than that are forgotten.
RECEIPT_PRUNE_SECONDS = 5.0

# (wa_id, status, due): a receipt the simulated WhatsApp owes a session.
Receipt = tuple[str, str, datetime]


@dataclass(frozen=True)
class SentEntry:
    whatsapp_id: str | None
    sent_at: float | None

    @property
    def completed(self) -> bool:
        return self.whatsapp_id is not None


class ReceiptBook(Protocol):
    """The receipts WhatsApp still owes the sessions: each is kept from the send until some
    time after it was reported, so a restart (or a move to another node) loses none."""

    def add(self, session_id: str, receipts: list[Receipt]) -> list[Receipt]:
        """Keep (wa_id, status, due) receipts; returns those that were not kept already."""

    def reported(self, receipts: list[tuple[str, str, str]]) -> None:
        """(session_id, wa_id, status) receipts were reported now."""

    def owed(self, session_id: str) -> list[Receipt]:
        """What a session that comes back is owed: receipts not reported yet, and those reported lately."""

    def close(self) -> None: ...


class SentLedger(Protocol):
    """Which of our message ids (`wa_id`) went out as which WhatsApp message id.

    An attempt is written before the send and completed with WhatsApp's id after it; one
    left open means the process ended while WhatsApp had the message.
    """

    def get(self, session_id: str, wa_id: str) -> SentEntry | None: ...

    def attempt(self, session_id: str, wa_id: str) -> None: ...

    def complete(self, session_id: str, wa_id: str, whatsapp_id: str, sent_at: float) -> None: ...

    def forget(self, session_id: str, wa_id: str) -> None: ...

    def our_id(self, session_id: str, whatsapp_id: str) -> str | None: ...

    def prune(self, older_than_seconds: float) -> int:
        """Drop entries too old for a receipt or a retry to name them."""

    def close(self) -> None: ...


class SharedState(Protocol):
    # A PostgreSQL URL (lib/pq's form) for neonize's device stores; "" keeps them in SQLite files.
    device_store_url: str

    def file_get(self, name: str) -> bytes | None:
        """The whole file, or None when there is none by that name."""

    def file_open(self, name: str) -> tuple[Path | BinaryIO, int] | None:
        """The file to stream (a path, or an open file positioned at its start) and its size."""

    def file_put(self, name: str, data: bytes | BinaryIO) -> None:
        """Keep `data` (bytes, or an open file read from its start) under `name`: whole or not at all."""

    def file_delete(self, name: str) -> None: ...

    def receipt_book(self, path: str) -> ReceiptBook:
        """The simulator's receipts (`path`: its file, where files are used)."""

    def sent_ledger(self, path: str) -> SentLedger:
        """The neonize engine's sent ledger (`path`: its file, where files are used)."""


class LocalState:
    """Everything in files under `root`: a file's name is its path there."""

    device_store_url = ""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        path = self.root / name
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"{name!r} is outside {self.root}")
        return path

    def file_get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def file_open(self, name: str) -> tuple[Path, int] | None:
        path = self._path(name)
        return (path, path.stat().st_size) if path.is_file() else None

    def file_put(self, name: str, data: bytes | BinaryIO) -> None:
        """Written under a temporary name first; an open file (a large upload) gets `name` as a
        hard link where the file system allows it (no copy), else it is copied."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        if isinstance(data, bytes | bytearray | memoryview):
            temporary.write_bytes(data)
        else:
            try:
                os.link(f"/proc/self/fd/{data.fileno()}", temporary, follow_symlinks=True)
            except (OSError, AttributeError, ValueError):
                with open(temporary, "wb") as copy:
                    data.seek(0)
                    shutil.copyfileobj(data, copy, 1024 * 1024)
        temporary.replace(path)

    def file_delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def receipt_book(self, path: str) -> SqliteReceiptBook:
        file = self._path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteReceiptBook(file)

    def sent_ledger(self, path: str) -> SqliteSentLedger:
        file = self._path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteSentLedger(file)


class _transaction:
    """BEGIN ... COMMIT on a connection in autocommit mode (rolled back on an error)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN")

    def __exit__(self, kind, value, traceback) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


class SqliteReceiptBook:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS receipts (
        session_id TEXT NOT NULL,
        wa_id TEXT NOT NULL,
        status TEXT NOT NULL,
        due REAL NOT NULL,
        reported_at REAL,
        PRIMARY KEY (session_id, wa_id, status)
    )
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=15
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives the process dying, as a server's disk would
        self._db.execute(self.SCHEMA)
        self._pruned = 0.0

    def add(self, session_id: str, receipts: list[Receipt]) -> list[Receipt]:
        added = []
        with self._lock:
            if self._db is None:
                return added
            with _transaction(self._db):
                for wa_id, status, due in receipts:
                    inserted = self._db.execute(
                        "INSERT OR IGNORE INTO receipts (session_id, wa_id, status, due) VALUES (?, ?, ?, ?)",
                        (session_id, wa_id, status, due.timestamp()),
                    ).rowcount
                    if inserted:
                        added.append((wa_id, status, due))
        return added

    def reported(self, receipts: list[tuple[str, str, str]]) -> None:
        now = time.time()
        with self._lock:
            if self._db is None or not receipts:
                return
            with _transaction(self._db):
                self._db.executemany(
                    "UPDATE receipts SET reported_at = ? WHERE session_id = ? AND wa_id = ? AND status = ?",
                    [(now, *receipt) for receipt in receipts],
                )
            if now - self._pruned >= RECEIPT_PRUNE_SECONDS:
                self._pruned = now
                self._db.execute("DELETE FROM receipts WHERE reported_at < ?", (now - RECEIPT_REDELIVER_SECONDS,))

    def owed(self, session_id: str) -> list[Receipt]:
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute(
                "SELECT wa_id, status, due FROM receipts WHERE session_id = ?"
                " AND (reported_at IS NULL OR reported_at >= ?) ORDER BY due",
                (session_id, time.time() - RECEIPT_REDELIVER_SECONDS),
            ).fetchall()
        return [(wa_id, status, datetime.fromtimestamp(due, UTC)) for wa_id, status, due in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class SqliteSentLedger:
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

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=15)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(self.SCHEMA)

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
        with self._lock:
            return self._db.execute(
                "DELETE FROM sent WHERE attempted_at < ?", (time.time() - older_than_seconds,)
            ).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
