"""A session's WhatsApp groups. WhatsApp holds them: every call goes to the engine host that
owns the session and waits for its answer, so what the API shows is what WhatsApp says."""

from __future__ import annotations

from flask import current_app

from models import User
from services.errors import ValidationError
from services.hosts.calls import engine_call
from services.platform.phones import group_id_check, phone_normalize
from services.sessions.lifecycle import session_get, session_require_connected

NAME_MAX = 100
PARTICIPANTS_MAX = 256
ACTIONS = ("add", "remove", "promote", "demote")
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


def _phones(value: object, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or (not value and not allow_empty) or len(value) > PARTICIPANTS_MAX:
        raise ValidationError(
            f"'participants' must be a list of 1 to {PARTICIPANTS_MAX} phone numbers", code="INVALID_PARTICIPANTS"
        )
    return list(dict.fromkeys(phone_normalize(phone, field="participants") for phone in value))


def groups_list(user: User, session_id: str) -> list[dict]:
    return _call(user, session_id, "groups_list")


def group_create(user: User, session_id: str, *, name: object, participants: object) -> dict:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise ValidationError(f"'name' must be a text of 1 to {NAME_MAX} characters", code="INVALID_FIELD")
    return _call(user, session_id, "group_create", name.strip(), _phones(participants))


def group_info(user: User, session_id: str, group_id: object) -> dict:
    return _call(user, session_id, "group_info", group_id_check(group_id))


def group_participants_change(
    user: User, session_id: str, group_id: object, action: str, participants: object
) -> list[dict]:
    """add/remove/promote/demote: [{phone, ok, reason?}] per participant."""
    if action not in ACTIONS:
        raise ValidationError(f"The action must be one of {', '.join(ACTIONS)}", code="INVALID_ACTION")
    group_id = group_id_check(group_id)
    outcome = _call(user, session_id, "group_participants", group_id, action, _phones(participants))
    return [
        {"phone": phone, "ok": result == "ok", **({"reason": result} if result != "ok" else {})}
        for phone, result in outcome.items()
    ]


def group_invite_link(user: User, session_id: str, group_id: object, *, revoke: bool = False) -> str:
    return _call(user, session_id, "group_invite_link", group_id_check(group_id), revoke=revoke)


def group_leave(user: User, session_id: str, group_id: object) -> None:
    _call(user, session_id, "group_leave", group_id_check(group_id))
