"""The shared state (engines/state.py) of a node: in PostgreSQL when that is the database, so
that every node reads what any node wrote; else in files under DATA_DIR, as one node needs.

Files are kept in parts of FILE_PART_BYTES (bytea rows), written and read a part at a time:
a 100 MB upload never sits whole in the web's memory on its way in or out. Everything is
written with the database's own connections (SQLAlchemy Core on the app's engine), never
through the ORM session of a request or a job, so engine threads may use it too.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from flask import Flask
from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from engines.state import (
    RECEIPT_PRUNE_SECONDS,
    RECEIPT_REDELIVER_SECONDS,
    LocalState,
    Receipt,
    SentEntry,
    SharedState,
)
from extensions import db
from models import NeonizeSent, SimulatorReceipt, StoredFilePart

log = logging.getLogger(__name__)

FILE_PART_BYTES = 1024 * 1024
AREAS = ("media", "engines")

_files = StoredFilePart.__table__
_receipts = SimulatorReceipt.__table__
_sent = NeonizeSent.__table__


def shared_state(app: Flask, area: str) -> SharedState:
    """What `area` keeps ("media": message media; "engines": what the engines keep), for this app:
    in PostgreSQL when it is the database, else under DATA_DIR/<area>. Built once per app."""
    if area not in AREAS:
        raise ValueError(f"unknown shared state area {area!r}")
    key = f"wagate.shared_state.{area}"
    state = app.extensions.get(key)
    if state is None:
        if make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "postgresql":
            with app.app_context():
                state = PostgresState(db.engine, area)
        else:
            state = LocalState(Path(app.config["DATA_DIR"]) / area)
        app.extensions[key] = state
    return state


def device_store_url(engine: Engine) -> str:
    """The database as lib/pq (whatsmeow's driver) takes it. lib/pq insists on TLS unless told
    otherwise, where SQLAlchemy's drivers try it and go on without: the same is asked here."""
    url = engine.url.set(drivername="postgresql")
    if "sslmode" not in url.query:
        url = url.update_query_dict({"sslmode": "prefer"})
    return url.render_as_string(hide_password=False)


class PostgresState:
    def __init__(self, engine: Engine, area: str) -> None:
        self.engine = engine
        self.prefix = f"{area}/"
        self.device_store_url = device_store_url(engine)

    def _parts(self, name: str) -> Iterator[bytes]:
        query = select(_files.c.data).where(_files.c.name == self.prefix + name).order_by(_files.c.part)
        with self.engine.connect() as connection:
            yield from connection.execution_options(stream_results=True, yield_per=4).scalars(query)

    def file_get(self, name: str) -> bytes | None:
        parts = list(self._parts(name))
        return b"".join(parts) if parts else None

    def file_open(self, name: str) -> tuple[BinaryIO, int] | None:
        """Copied, a part at a time, into an unnamed temporary file (closed by whoever streams it)."""
        file = tempfile.TemporaryFile()
        size = 0
        try:
            for part in self._parts(name):
                file.write(part)
                size += len(part)
        except BaseException:
            file.close()
            raise
        if size == 0 and not self._exists(name):
            file.close()
            return None
        file.seek(0)
        return file, size

    def _exists(self, name: str) -> bool:
        with self.engine.connect() as connection:
            return bool(connection.scalar(select(func.count()).where(_files.c.name == self.prefix + name)))

    def file_put(self, name: str, data: bytes | BinaryIO) -> None:
        full_name = self.prefix + name
        with self.engine.begin() as connection:
            connection.execute(delete(_files).where(_files.c.name == full_name))
            for number, part in enumerate(_chunks(data)):
                connection.execute(_files.insert().values(name=full_name, part=number, data=part))

    def file_delete(self, name: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(_files).where(_files.c.name == self.prefix + name))

    def receipt_book(self, path: str) -> PostgresReceiptBook:
        return PostgresReceiptBook(self.engine)

    def sent_ledger(self, path: str) -> PostgresSentLedger:
        return PostgresSentLedger(self.engine)


def _chunks(data: bytes | BinaryIO) -> Iterator[bytes]:
    """The parts of `data`; an empty file is one empty part (it exists)."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        yield from (bytes(view[at : at + FILE_PART_BYTES]) for at in range(0, len(view), FILE_PART_BYTES))
        if not len(view):
            yield b""
        return
    data.seek(0)
    first = True
    while part := data.read(FILE_PART_BYTES):
        first = False
        yield part
    if first:
        yield b""


class PostgresReceiptBook:
    """The simulator's owed receipts in PostgreSQL. While the database is out of reach the
    simulated WhatsApp goes on as it stood: receipts of new sends are still reported (not
    kept past this process), and which were reported is not written (they may come twice)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pruned = 0.0

    def add(self, session_id: str, receipts: list[Receipt]) -> list[Receipt]:
        added = []
        try:
            with self.engine.begin() as connection:
                for wa_id, status, due in receipts:
                    inserted = connection.execute(
                        insert(_receipts)
                        .values(session_id=session_id, wa_id=wa_id, status=status, due=due.timestamp())
                        .on_conflict_do_nothing()
                        .returning(_receipts.c.wa_id)
                    ).first()
                    if inserted is not None:
                        added.append((wa_id, status, due))
        except DBAPIError as exc:
            log.warning("simulator: receipts of session %s not kept (%s)", session_id, exc.orig or exc)
            return list(receipts)
        return added

    def reported(self, receipts: list[tuple[str, str, str]]) -> None:
        if not receipts:
            return
        now = time.time()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    update(_receipts)
                    .where(
                        _receipts.c.session_id == bindparam("s_session_id"),
                        _receipts.c.wa_id == bindparam("s_wa_id"),
                        _receipts.c.status == bindparam("s_status"),
                    )
                    .values(reported_at=now),
                    [{"s_session_id": s, "s_wa_id": w, "s_status": status} for s, w, status in receipts],
                )
                if now - self._pruned >= RECEIPT_PRUNE_SECONDS:
                    self._pruned = now
                    connection.execute(
                        delete(_receipts).where(_receipts.c.reported_at < now - RECEIPT_REDELIVER_SECONDS)
                    )
        except DBAPIError as exc:
            log.warning("simulator: %d reported receipt(s) not noted (%s)", len(receipts), exc.orig or exc)

    def owed(self, session_id: str) -> list[Receipt]:
        query = (
            select(_receipts.c.wa_id, _receipts.c.status, _receipts.c.due)
            .where(
                _receipts.c.session_id == session_id,
                _receipts.c.reported_at.is_(None)
                | (_receipts.c.reported_at >= time.time() - RECEIPT_REDELIVER_SECONDS),
            )
            .order_by(_receipts.c.due)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [(wa_id, status, datetime.fromtimestamp(due, UTC)) for wa_id, status, due in rows]

    def close(self) -> None:
        """Nothing of its own to close: it uses the app's connection pool."""


class PostgresSentLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, session_id: str, wa_id: str) -> SentEntry | None:
        query = select(_sent.c.whatsapp_id, _sent.c.sent_at).where(
            _sent.c.session_id == session_id, _sent.c.wa_id == wa_id
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return SentEntry(*row) if row else None

    def attempt(self, session_id: str, wa_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(_sent)
                .values(session_id=session_id, wa_id=wa_id, attempted_at=time.time())
                .on_conflict_do_nothing()
            )

    def complete(self, session_id: str, wa_id: str, whatsapp_id: str, sent_at: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(_sent)
                .where(_sent.c.session_id == session_id, _sent.c.wa_id == wa_id)
                .values(whatsapp_id=whatsapp_id, sent_at=sent_at)
            )

    def forget(self, session_id: str, wa_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(_sent).where(_sent.c.session_id == session_id, _sent.c.wa_id == wa_id))

    def our_id(self, session_id: str, whatsapp_id: str) -> str | None:
        query = select(_sent.c.wa_id).where(_sent.c.session_id == session_id, _sent.c.whatsapp_id == whatsapp_id)
        with self.engine.connect() as connection:
            return connection.scalar(query.limit(1))

    def prune(self, older_than_seconds: float) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                delete(_sent).where(_sent.c.attempted_at < time.time() - older_than_seconds)
            ).rowcount

    def close(self) -> None:
        """Nothing of its own to close: it uses the app's connection pool."""
