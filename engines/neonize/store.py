"""Where each session's WhatsApp device (its keys and linked-device identity) is kept.

One store per session, so restarting a session is just reopening its store: whatsmeow
loads the first (only) device in it, and no device ids need tracking (asking for a device
id that is not in a store aborts the process). By default a store is one SQLite file,
DATA_DIR/engines/neonize/<sessionId>.db; with a PostgreSQL URL it is one schema per
session in that database, chosen through the connection's search_path.

The engine reads a store only to tell whether it holds a paired device and which phone
that is; whatsmeow owns the contents.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEVICE_QUERY = "SELECT jid FROM whatsmeow_device LIMIT 1"


def _phone_of(jid: str | None) -> str | None:
    """The phone number of a device JID such as `919876543210:12@s.whatsapp.net`."""
    if not jid:
        return None
    return jid.split("@", 1)[0].split(":", 1)[0].split(".", 1)[0] or None


class SqliteStores:
    kind = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.db"

    def name(self, session_id: str) -> str:
        """What neonize opens for the session (its `name`)."""
        return str(self.path(session_id))

    def prepare(self, session_id: str) -> None:
        """Nothing to do: whatsmeow creates the file and its tables."""

    def device_jid(self, session_id: str) -> str | None:
        path = self.path(session_id)
        if not path.exists():
            return None
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
                row = db.execute(DEVICE_QUERY).fetchone()
        except sqlite3.Error:  # no tables yet: whatsmeow has not opened it
            return None
        return row[0] if row else None

    def phone(self, session_id: str) -> str | None:
        return _phone_of(self.device_jid(session_id))

    def clear(self, session_id: str) -> None:
        """Forget the device: the file goes (with its WAL files)."""
        path = self.path(session_id)
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


class PostgresStores:
    """One schema per session (`wa_<sessionId>`) in one PostgreSQL database."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def schema(session_id: str) -> str:
        return "wa_" + "".join(ch if ch.isalnum() else "_" for ch in session_id.lower())

    def name(self, session_id: str) -> str:
        # lib/pq, the driver whatsmeow uses, passes unknown URL parameters on to the server
        # as session settings, so every table whatsmeow creates or reads is the session's.
        parts = urlsplit(self.url)
        query = [(key, value) for key, value in parse_qsl(parts.query) if key != "search_path"]
        query.append(("search_path", self.schema(session_id)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _connect(self):
        import psycopg

        parts = urlsplit(self.url)
        query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key != "search_path"])
        return psycopg.connect(urlunsplit(parts._replace(scheme="postgresql", query=query)), connect_timeout=10)

    def prepare(self, session_id: str) -> None:
        schema = self.schema(session_id)
        with self._connect() as db:
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            # whatsmeow asks whether its version table exists in any schema, then reads it
            # through the search_path: made here, the answer holds for this schema too
            # (empty, it means "not set up yet", and whatsmeow creates the rest).
            db.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".whatsmeow_version (version INTEGER, compat INTEGER)')

    def device_jid(self, session_id: str) -> str | None:
        import psycopg

        try:
            with self._connect() as db:
                row = db.execute(f'SELECT jid FROM "{self.schema(session_id)}".whatsmeow_device LIMIT 1').fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        except psycopg.errors.InvalidSchemaName:
            return None
        return row[0] if row else None

    def phone(self, session_id: str) -> str | None:
        return _phone_of(self.device_jid(session_id))

    def clear(self, session_id: str) -> None:
        with self._connect() as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{self.schema(session_id)}" CASCADE')


DeviceStores = SqliteStores | PostgresStores


def device_stores(directory: Path, database_url: str = "") -> DeviceStores:
    if database_url.startswith(("postgres://", "postgresql://")):
        return PostgresStores(database_url)
    if database_url:
        raise ValueError("NEONIZE_DATABASE_URL must be a postgres:// or postgresql:// URL (or empty for SQLite)")
    return SqliteStores(directory)
