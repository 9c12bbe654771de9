"""A session's contacts: its phone's address book, the people who wrote to it, and the
names, tags and notes its owner keeps on them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Contact, Message, User, WaSession
from models.message import INBOUND
from services.errors import NotFound, ValidationError
from services.platform.paging import page_number
from services.platform.phones import phone_normalize
from services.sessions.lifecycle import session_get

NAME_MAX = 256  # names that come from phones and contacts are cut to this
LID_SERVER = "@lid"


def _contact(session: WaSession, phone: str) -> Contact:
    """The session's contact for `phone`, added (uncommitted) when new."""
    contact = db.session.scalar(select(Contact).where(Contact.session_id == session.id, Contact.phone == phone))
    if contact is None:
        contact = Contact(user_id=session.user_id, session_id=session.id, phone=phone, tags=[], notes="")
        db.session.add(contact)
    return contact


def contacts_sync(session_id: str, entries: list[dict]) -> int:
    """The phone's address book arrived: names for the numbers in it (owner's names stay)."""
    session = db.session.get(WaSession, session_id)
    if session is None:
        return 0
    count = 0
    for entry in entries:
        try:
            phone = phone_normalize(entry.get("phone"))
        except ValidationError:
            continue  # a landline or a malformed entry in someone's address book
        contact = _contact(session, phone)
        contact.address_book_name = (entry.get("name") or "").strip()[:NAME_MAX] or contact.address_book_name
        contact.in_address_book = True
        count += 1
    db.session.commit()
    return count


def contact_seen(
    session: WaSession,
    phone: str,
    *,
    push_name: str | None,
    at: datetime,
    lid: str | None = None,
    history: bool = False,
) -> Contact:
    """Someone wrote to the session (in the caller's transaction): they are a contact now.

    `phone` is their phone number, or their LID's digits while WhatsApp gave no number;
    `lid` their LID when known. A contact known so far only by the LID gets its phone
    number, or is merged into the contact the number has. Returns the contact: its `phone`
    is what their messages are filed under. A `history` message (a backfill's) only names
    when they last wrote if nothing newer did.
    """
    contact = _contact_identify(session, phone, lid)
    if push_name:
        contact.push_name = push_name[:NAME_MAX]
    if not history or contact.last_message_at is None:
        contact.last_message_at = at
    return contact


def sender_phone(session: WaSession, phone: str, lid: str | None) -> str:
    """Whom a contact's reaction or vote is from: the number known for a LID-only sender."""
    if not lid or phone != lid_normalize(lid).partition("@")[0]:
        return phone
    known = db.session.scalar(
        select(Contact.phone).where(Contact.session_id == session.id, Contact.lid == lid_normalize(lid))
    )
    return known or phone


def lid_normalize(raw: str) -> str:
    """'123456789012345@lid' (or with a device part, '…:3@lid') as contacts keep it."""
    return raw.strip().partition("@")[0].split(":", 1)[0] + LID_SERVER


def _contact_identify(session: WaSession, phone: str, lid: str | None) -> Contact:
    """The one contact for a phone number and a LID (uncommitted): found by either, given
    the other, and merged when both had one."""
    if not lid:
        return _contact(session, phone)
    lid = lid_normalize(lid)
    by_lid = db.session.scalar(select(Contact).where(Contact.session_id == session.id, Contact.lid == lid))
    by_phone = db.session.scalar(select(Contact).where(Contact.session_id == session.id, Contact.phone == phone))
    if phone == lid.partition("@")[0]:  # no number in this message: the contact's, if known
        contact = by_lid or by_phone or _contact(session, phone)
        contact.lid = lid
        return contact
    if by_lid is not None and by_phone is not None and by_lid.id != by_phone.id:
        _contact_merge(session, into=by_phone, other=by_lid)
        db.session.flush()
    contact = by_phone or by_lid
    if contact is None:
        contact = _contact(session, phone)
    elif contact.phone != phone and contact.phone == lid.partition("@")[0]:
        _messages_refile(session, contact.phone, phone)  # a number for the LID, at last
        contact.phone = phone
    contact.lid = lid
    return contact


def _contact_merge(session: WaSession, *, into: Contact, other: Contact) -> None:
    """`other` (known by the LID) and `into` (by the number) are one person: `into` keeps
    what it has and takes what only `other` knew; `other`'s messages are filed under the number."""
    into.name = into.name or other.name
    into.address_book_name = into.address_book_name or other.address_book_name
    into.push_name = into.push_name or other.push_name
    into.tags = list(dict.fromkeys([*(into.tags or []), *(other.tags or [])]))
    into.notes = "\n".join(note for note in (into.notes, other.notes) if note)
    into.in_address_book = into.in_address_book or other.in_address_book
    seen = [moment for moment in (into.last_message_at, other.last_message_at) if moment is not None]
    into.last_message_at = max(seen, key=_aware, default=None)
    _messages_refile(session, other.phone, into.phone)
    db.session.delete(other)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite gives naive times


def _messages_refile(session: WaSession, old: str, new: str) -> None:
    """Messages filed under a LID's digits go under the phone number found for it."""
    db.session.execute(
        update(Message)
        .where(Message.session_id == session.id, Message.direction == INBOUND, Message.phone == old)
        .values(phone=new)
        .execution_options(synchronize_session=False)
    )


def contact_phone_for_lid(session: WaSession, lid: str, *, field: str = "to") -> str:
    """The phone number to send to for a contact named by its LID; a 400 while none is known."""
    contact = db.session.scalar(
        select(Contact).where(Contact.session_id == session.id, Contact.lid == lid_normalize(lid))
    )
    if contact is None or contact.phone == contact.lid.partition("@")[0]:
        raise ValidationError(
            "No phone number is known for this LID yet: WhatsApp gives it when the contact writes again",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    return contact.phone


def contacts_list(user: User, session_id: str, *, search: str | None = None, page=None, limit=None) -> dict:
    """One page of the session's contacts, by name; `search` matches name, number, tag or notes."""
    session = session_get(user, session_id)
    limit = page_number(limit, default=50, maximum=200)
    page = page_number(page, default=1, maximum=10**6, field="page")
    query = select(Contact).where(Contact.user_id == user.id, Contact.session_id == session.id)
    if search and search.strip():
        needle = search.strip()
        digits = "".join(ch for ch in needle if ch.isdigit())
        matches = [
            Contact.name.icontains(needle, autoescape=True),
            Contact.address_book_name.icontains(needle, autoescape=True),
            Contact.push_name.icontains(needle, autoescape=True),
            Contact.notes.icontains(needle, autoescape=True),
            func.lower(cast(Contact.tags, String)).contains(needle.lower(), autoescape=True),
        ]
        if digits:
            matches.append(Contact.phone.contains(digits))
        query = query.where(or_(*matches))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    shown = func.coalesce(Contact.name, Contact.address_book_name, Contact.push_name, Contact.phone)
    rows = db.session.scalars(query.order_by(func.lower(shown), Contact.phone).limit(limit).offset((page - 1) * limit))
    return {"contacts": [c.to_dict() for c in rows], "total": total, "page": page, "limit": limit}


def contact_get(user: User, session_id: str, phone_or_lid: object) -> Contact:
    """A contact by phone number or by LID ('<digits>@lid', or the LID's bare digits)."""
    session = session_get(user, session_id)
    mine = select(Contact).where(Contact.user_id == user.id, Contact.session_id == session.id)
    text = phone_or_lid.strip() if isinstance(phone_or_lid, str) else phone_or_lid
    contact = None
    if isinstance(text, str) and text.endswith(LID_SERVER):
        contact = db.session.scalar(mine.where(Contact.lid == lid_normalize(text)))
    else:
        try:
            phone = phone_normalize(text, field="phone")
        except ValidationError:
            if not (isinstance(text, str) and text.isdigit()):
                raise
            phone = None
        if phone is not None:
            contact = db.session.scalar(mine.where(Contact.phone == phone))
        if contact is None and isinstance(text, str) and text.isdigit():
            contact = db.session.scalar(mine.where(Contact.lid == text + LID_SERVER))
    if contact is None:
        raise NotFound("This session has no such contact", error="Contact not found", code="CONTACT_NOT_FOUND")
    return contact


def contact_upsert(user: User, session_id: str, phone: object, changes: dict) -> tuple[Contact, bool]:
    """Save the owner's name, tags and notes for a number; (contact, whether it is new).
    A contact WhatsApp named by LID is found by it ('<digits>@lid') too, not made by it.

    `changes` is checked by its schema (blueprints/schemas/contacts.py): any of name (or
    null), tags and notes.
    """
    session = session_get(user, session_id)
    if isinstance(phone, str) and phone.strip().endswith(LID_SERVER):
        phone = contact_get(user, session_id, phone).phone
    else:
        phone = phone_normalize(phone, field="phone")
    values: dict = {}
    if "name" in changes:
        values["name"] = (changes["name"] or "").strip() or None
    if "tags" in changes:
        values["tags"] = list(dict.fromkeys(tag.strip() for tag in changes["tags"]))
    if "notes" in changes:
        values["notes"] = changes["notes"]
    contact = db.session.scalar(select(Contact).where(Contact.session_id == session.id, Contact.phone == phone))
    created = contact is None
    contact = contact or _contact(session, phone)
    for key, value in values.items():
        setattr(contact, key, value)
    try:
        db.session.commit()
    except IntegrityError:  # the same number saved by a concurrent request: update that one
        db.session.rollback()
        return contact_upsert(user, session_id, phone, changes)[0], False
    return contact, created
