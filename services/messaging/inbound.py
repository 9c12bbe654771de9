"""Messages contacts send: stored once, reactions and poll votes recorded on their message; the simulator's contacts."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from engines.outgoing import KINDS
from extensions import db
from jobs import engine as engine_jobs
from models import Message, MessageStatus, User, WaSession
from models.message import INBOUND, OUTBOUND
from services.contacts.book import contact_seen, sender_phone
from services.errors import NotFound, ValidationError
from services.events.bus import event_publish
from services.events.catalog import MessageReaction, MessageReceived, PollVote
from services.hosts.calls import engine_enqueue
from services.messaging.media import file_name_safe
from services.messaging.outgoing import media_files, media_save, outgoing_parse
from services.platform.phones import is_group_id, phone_normalize
from services.sessions.lifecycle import session_get, session_require_connected


def message_inbound(
    session_id: str,
    *,
    wa_id: str,
    sender: str,
    text: str,
    at: datetime,
    kind: str = "text",
    details: dict | None = None,
    media: bytes | None = None,
    lid: str | None = None,
    from_me: bool = False,
    history: bool = False,
    notify: bool = True,
) -> Message | None:
    """Store a message a contact sent to the session (once), count it, tell the owner.

    `details` are the kind's (location, contact card, quoted message, group chat...),
    `media` its bytes (kept as the media file inbound/<message id>, up to INBOUND_MEDIA_MAX_BYTES).
    `sender` is their phone number (a LID's digits when WhatsApp gave none), `lid` their
    LID when known: the message is filed under the contact's phone number whenever one is
    known. A reaction or a poll vote is not a message of its own: it is recorded on the
    message it reacts to, or the poll.

    `history` messages come from a backfill of the phone's history: stored as such (those
    the session's phone sent too, `from_me`), not counted as received, and told to the
    owner only when `notify` (the backfill asked for it).
    """
    session = db.session.get(WaSession, session_id)
    duplicate = db.session.scalar(select(Message.id).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if session is None or duplicate:
        return None
    details = dict(details or {})
    for name in ("filename", "fileName"):
        if isinstance(details.get(name), str):
            details[name] = file_name_safe(details[name])
    if kind == "reaction" and not history:
        _reaction_record(session, sender_phone(session, sender, lid), details.get("reaction") or {}, at)
        return None
    if kind == "poll_vote" and not history:
        _poll_vote_record(session, sender_phone(session, sender, lid), details.get("pollVote") or {}, at)
        return None
    if from_me:
        phone, lid = sender, None
    else:
        contact = contact_seen(session, sender, push_name=details.get("pushName"), at=at, lid=lid, history=history)
        phone, lid = contact.phone, contact.lid
    chat = details.get("chat")
    message = Message(
        user_id=session.user_id,
        session_id=session_id,
        direction=OUTBOUND if from_me else INBOUND,
        phone=phone,
        chat=chat if is_group_id(chat) else None,
        body=text or _inbound_preview(kind, details),
        type=kind if kind in KINDS else "text",
        wa_id=wa_id,
        status=MessageStatus.SENT if from_me else MessageStatus.RECEIVED,
        history=history,
        created_at=at,
        sent_at=at if from_me else None,
    )
    db.session.add(message)
    db.session.flush()
    if media is not None:
        details |= inbound_media_store(message, media)
    message.payload = details or None
    if not history:
        session.messages_received += 1
    db.session.commit()
    if from_me or (history and not notify):
        return message
    event_publish(
        session.user_id,
        MessageReceived(
            message_id=message.id,
            session_id=session_id,
            sender=phone,
            message=message.body,
            type=message.type,
            content=message.payload_public() if message.payload else None,
            timestamp=at,
            phone=phone if not lid or phone != lid.partition("@")[0] else None,
            lid=lid,
            history=history or None,
        ),
    )
    return message


def _inbound_preview(kind: str, details: dict) -> str:
    place, card, poll = details.get("location") or {}, details.get("contact") or {}, details.get("poll") or {}
    named = place.get("name") or card.get("full_name") or poll.get("question") or details.get("filename")
    labels = {"image": "🖼 Photo", "video": "🎬 Video", "audio": "🎵 Audio", "ptt": "🎤 Voice message"}
    return named or labels.get(kind, f"[{kind}]")


def inbound_media_store(message: Message, media: bytes) -> dict:
    """Keep a received file (if not too big); what the message records about it."""
    limit = current_app.config["INBOUND_MEDIA_MAX_BYTES"]
    facts = {"size": len(media), "sha256": hashlib.sha256(media).hexdigest()}
    if len(media) > limit:
        return facts | {"media_dropped": f"larger than {limit} bytes"}
    media_files().file_put(f"inbound/{message.id}", media)
    return facts | {"media_file": f"inbound/{message.id}"}


def _reaction_record(session: WaSession, sender: str, reaction: dict, at: datetime) -> None:
    """A contact reacted to one of the session's messages ("" takes the reaction back)."""
    target_wa_id = reaction.get("message_wa_id") or reaction.get("messageWaId")
    target = db.session.scalar(select(Message).where(Message.session_id == session.id, Message.wa_id == target_wa_id))
    if target is None:
        return
    emoji = reaction.get("emoji") or ""
    reactions = _payload_entry_set(target, "reactions", sender, emoji)
    event_publish(
        session.user_id,
        MessageReaction(
            message_id=target.id, session_id=session.id, sender=sender, emoji=emoji, reactions=reactions, timestamp=at
        ),
    )


def _poll_vote_record(session: WaSession, voter: str, vote: dict, at: datetime) -> None:
    """A contact voted on one of the session's polls: their latest choice replaces the earlier
    one (none takes the vote back). Engines name the options, or give their SHA-256 (WhatsApp's
    encrypted votes do)."""
    target = db.session.scalar(
        select(Message).where(Message.session_id == session.id, Message.wa_id == vote.get("messageWaId"))
    )
    poll = (target.payload or {}).get("poll") if target is not None else None
    if not poll:
        return
    options = list(poll.get("options") or [])
    by_hash = {hashlib.sha256(option.encode()).hexdigest(): option for option in options}
    chosen = [option for option in vote.get("options") or [] if option in options]
    chosen += [by_hash[digest] for digest in vote.get("optionHashes") or [] if digest in by_hash]
    chosen = list(dict.fromkeys(chosen))
    votes = _payload_entry_set(target, "votes", voter, chosen)
    event_publish(
        session.user_id,
        PollVote(
            message_id=target.id,
            session_id=session.id,
            sender=voter,
            options=chosen,
            results=poll_results(options, votes),
            timestamp=at,
        ),
    )


def _payload_entry_set(message: Message, key: str, sender: str, value: object) -> dict:
    """Record what `sender` says of a message under payload[key] (an empty value takes it
    back), commit, and return the whole record: {sender: value}."""
    payload = dict(message.payload or {})
    entries = dict(payload.get(key) or {})
    if value:
        entries[sender] = value
    else:
        entries.pop(sender, None)
    payload[key] = entries
    message.payload = payload
    db.session.commit()
    return entries


def poll_results(options: list[str], votes: dict[str, list[str]]) -> list[dict]:
    """Each option of a poll with its number of votes, in the poll's order."""
    return [{"option": option, "votes": sum(option in chosen for chosen in votes.values())} for option in options]


def simulate_inbound(user: User, session_id: str, *, sender: str, content: dict) -> None:
    """Simulator only: have a contact send the session a message, through the engine host.

    `content` is the simulator's inbound body (blueprints/schemas/simulator.py, checked):
    any kind of message a send takes, or a vote on one of the session's polls.
    """
    session = session_get(user, session_id)
    sender = phone_normalize(sender, field="from")
    if content.get("vote") is not None:
        _simulate_vote(session, sender, content["vote"])
        return
    media_file = None
    outgoing = outgoing_parse(session, content)
    message = outgoing.to_record()
    if outgoing.media is not None:
        media_file = f"simulated/{secrets.token_hex(16)}"
        media_save(outgoing.media, media_file)
    session_require_connected(session, "only a connected session receives messages")
    engine_enqueue(session, engine_jobs.engine_simulate_inbound, session.id, sender, message, media_file)


def _simulate_vote(session: WaSession, sender: str, vote: dict) -> None:
    """A contact votes on one of the session's polls: {"messageId", "options": [...]}."""
    poll = db.session.scalar(select(Message).where(Message.id == vote["messageId"], Message.session_id == session.id))
    if poll is None or poll.type != "poll":
        raise NotFound("No poll with that id in this session", code="POLL_NOT_FOUND")
    options, known = vote["options"], poll.payload["poll"]["options"]
    if any(option not in known for option in options):
        raise ValidationError(f"'options' must be a list of the poll's options: {known}", code="INVALID_FIELD")
    if len(options) > 1 and not poll.payload["poll"].get("multiple_answers"):
        raise ValidationError("This poll takes one answer", code="INVALID_FIELD")
    session_require_connected(session, "only a connected session receives votes")
    engine_enqueue(session, engine_jobs.engine_simulate_vote, session.id, sender, poll.wa_id, options)


def simulate_address_book(user: User, session_id: str, contacts: list[dict]) -> int:
    """Simulator only: the simulated phone's address book syncs to the session."""
    session = session_get(user, session_id)
    entries = []
    for entry in contacts:
        name = entry.get("name")
        entries.append({"phone": phone_normalize(entry["phone"], field="contacts"), "name": str(name or "")[:256]})
    session_require_connected(session, "the phone syncs its address book while connected")
    engine_enqueue(session, engine_jobs.engine_simulate_address_book, session.id, entries)
    return len(entries)
