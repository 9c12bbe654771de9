"""A session's WhatsApp groups. WhatsApp holds them: every call goes to the engine host that
owns the session and waits for its answer, so what the API shows is what WhatsApp says.

Group ids, names, participant lists and actions come checked by the routes' schemas
(blueprints/schemas/groups.py); each participant's number is checked here."""

from __future__ import annotations

from flask import current_app

from models import User
from services.hosts.calls import engine_call
from services.platform.phones import phone_normalize
from services.sessions.lifecycle import session_get, session_require_connected

REFUSALS = {
    "GROUP_NOT_FOUND": (404, "Group not found"),
    "NOT_GROUP_ADMIN": (403, "Not a group admin"),
    "NUMBER_NOT_ON_WHATSAPP": (400, "Number not on WhatsApp"),
}


def _call(user: User, session_id: str, action: str, *args: object, **options: object):
    session = session_get(user, session_id)
    session_require_connected(session, "groups are reached through a connected session")
    seconds = current_app.config["GROUP_CALL_WAIT_SECONDS"]
    return engine_call(session, action, *args, seconds=seconds, refusals=REFUSALS, **options)


def _phones(value: list[str]) -> list[str]:
    return list(dict.fromkeys(phone_normalize(phone, field="participants") for phone in value))


def groups_list(user: User, session_id: str) -> list[dict]:
    return _call(user, session_id, "groups_list")


def group_create(user: User, session_id: str, *, name: str, participants: list[str]) -> dict:
    return _call(user, session_id, "group_create", name.strip(), _phones(participants))


def group_info(user: User, session_id: str, group_id: str) -> dict:
    return _call(user, session_id, "group_info", group_id.strip())


def group_participants_change(
    user: User, session_id: str, group_id: str, action: str, participants: list[str]
) -> list[dict]:
    """add/remove/promote/demote: [{phone, ok, reason?}] per participant."""
    outcome = _call(user, session_id, "group_participants", group_id.strip(), action, _phones(participants))
    return [
        {"phone": phone, "ok": result == "ok", **({"reason": result} if result != "ok" else {})}
        for phone, result in outcome.items()
    ]


def group_invite_link(user: User, session_id: str, group_id: str, *, revoke: bool = False) -> str:
    return _call(user, session_id, "group_invite_link", group_id.strip(), revoke=revoke)


def group_leave(user: User, session_id: str, group_id: str) -> None:
    _call(user, session_id, "group_leave", group_id.strip())
