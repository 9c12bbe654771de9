"""A session's contacts: its phone's address book, the people who wrote to it, and the
names, tags and notes its owner keeps on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Contact, User, WaSession
from services.errors import NotFound, ValidationError
from services.platform.paging import page_number
from services.platform.phones import phone_normalize
from services.sessions.lifecycle import session_get

NAME_MAX = 256  # names that come from phones and contacts are cut to this


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


def contact_seen(session: WaSession, phone: str, *, push_name: str | None, at: datetime) -> None:
    """Someone wrote to the session (in the caller's transaction): they are a contact now."""
    contact = _contact(session, phone)
    if push_name:
        contact.push_name = push_name[:NAME_MAX]
    contact.last_message_at = at


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


def contact_get(user: User, session_id: str, phone: object) -> Contact:
    session = session_get(user, session_id)
    contact = db.session.scalar(
        select(Contact).where(
            Contact.user_id == user.id,
            Contact.session_id == session.id,
            Contact.phone == phone_normalize(phone, field="phone"),
        )
    )
    if contact is None:
        raise NotFound("This session has no such contact", error="Contact not found", code="CONTACT_NOT_FOUND")
    return contact


def contact_upsert(user: User, session_id: str, phone: object, changes: dict) -> tuple[Contact, bool]:
    """Save the owner's name, tags and notes for a number; (contact, whether it is new).

    `changes` is checked by its schema (blueprints/schemas/contacts.py): any of name (or
    null), tags and notes.
    """
    session = session_get(user, session_id)
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
