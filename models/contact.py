"""People a session knows: from the phone's address book, from who wrote, and as the owner edits them."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import isoformat, new_id, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("session_id", "phone", name="uq_contacts_session_phone"),
        UniqueConstraint("session_id", "lid", name="uq_contacts_session_lid"),
        Index("ix_contacts_user_session", "user_id", "session_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(ForeignKey("wa_sessions.id", ondelete="CASCADE"))
    # Their phone number; the digits of their LID while WhatsApp has named them only by it.
    phone: Mapped[str] = mapped_column(String(32))
    # WhatsApp's hidden id for them ("<digits>@lid"), once known.
    lid: Mapped[str | None] = mapped_column(String(64))
    # The owner's name for them (wins), the phone's address book's, and their own WhatsApp name.
    name: Mapped[str | None] = mapped_column(String(256))
    address_book_name: Mapped[str | None] = mapped_column(String(256))
    push_name: Mapped[str | None] = mapped_column(String(256))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    in_address_book: Mapped[bool] = mapped_column(default=False)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def display_name(self) -> str:
        return self.name or self.address_book_name or self.push_name or self.phone

    def to_dict(self) -> dict:
        return {
            "phone": self.phone,
            "lid": self.lid,
            "sessionId": self.session_id,
            "name": self.display_name,
            "savedName": self.name,
            "addressBookName": self.address_book_name,
            "pushName": self.push_name,
            "tags": list(self.tags or []),
            "notes": self.notes or "",
            "inAddressBook": self.in_address_book,
            "lastMessageAt": isoformat(self.last_message_at),
            "updatedAt": isoformat(self.updated_at),
        }
