"""What nodes share beyond the domain's rows, with PostgreSQL as the database (engines/state.py):
files (message media, simulated devices and groups) in parts, the receipts the simulated
WhatsApp owes, the neonize engine's sent ledger. They are written by engines and roles
through services/platform/shared_state.py, never through the ORM session."""

from sqlalchemy import Float, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db


class StoredFilePart(db.Model):
    """One part of a file (a file of N bytes is ceil(N / part size) rows, numbered from 0)."""

    __tablename__ = "stored_files"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SimulatorReceipt(db.Model):
    __tablename__ = "simulator_receipts"
    __table_args__ = (Index("ix_simulator_receipts_reported_at", "reported_at"),)

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wa_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    due: Mapped[float] = mapped_column(Float)  # Unix seconds
    reported_at: Mapped[float | None] = mapped_column(Float)


class NeonizeSent(db.Model):
    __tablename__ = "neonize_sent"
    __table_args__ = (Index("ix_neonize_sent_whatsapp_id", "session_id", "whatsapp_id"),)

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wa_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    whatsapp_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[float | None] = mapped_column(Float)  # Unix seconds
    attempted_at: Mapped[float] = mapped_column(Float)
