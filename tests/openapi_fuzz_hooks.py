"""schemathesis hooks for tests/test_openapi_fuzz.py (loaded by the schemathesis CLI it runs).

What a JSON Schema cannot say, said here, so that data the schema calls valid really is:
- `format: phone` (blueprints/schemas/fields.py) is a number valid for its country and on the
  simulated WhatsApp (the simulator says numbers ending in 0000 are not);
- media URLs and data URLs carry a real file of their kind, and every URL the server would
  call (media, webhooks) points at the test's own receiver on loopback, so a fuzzed request
  never makes the server reach the internet;
- the session the run works through, its API key and the webhook it watches are never
  unlinked, revoked or pointed elsewhere: the destructive routes get their own sacrificial
  resources (the fuzzer's other cases, and its stateful runs, still exercise them).

The run's context (ids, the receiver's address) comes in WAGATE_FUZZ_CONTEXT as JSON.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import schemathesis
from email_validator import EmailNotValidError, validate_email
from hypothesis import strategies as st

_accounts = itertools.count(1)
CONTEXT = json.loads(os.environ.get("WAGATE_FUZZ_CONTEXT", "{}"))
MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio", "voice": "audio", "document": "document"}
MEDIA_KINDS |= {"sticker": "sticker"}
URL_PATTERN = re.compile(r"^\s*https?://", re.IGNORECASE)
GROUP_ID = re.compile(r"^\s*[0-9]{5,25}(-[0-9]{5,15})?@g\.us\s*$")

# CPython 3.11's AST builder keeps its recursion depth in shared state, so two threads
# turning source into AST objects, or AST objects into code, at once can fail with "AST
# constructor recursion depth mismatch" (python/cpython#106905). Hypothesis parses source
# to describe lambdas, from every schemathesis worker thread, and Werkzeug compiles the
# AST of its URL builders: one at a time.
_parse, _compile, _ast_lock = ast.parse, builtins.compile, threading.RLock()


def _serial_parse(*args, **kwargs):
    with _ast_lock:
        return _parse(*args, **kwargs)


def _serial_compile(source, *args, **kwargs):
    if not isinstance(source, ast.AST):
        return _compile(source, *args, **kwargs)
    with _ast_lock:
        return _compile(source, *args, **kwargs)


ast.parse = _serial_parse
builtins.compile = _serial_compile


def _valid(number: str) -> bool:
    parsed = phonenumbers.parse("+" + re.sub(r"\D", "", number))
    return phonenumbers.is_valid_number(parsed) and not re.sub(r"\D", "", number).endswith("0000")


_digits = st.builds(
    lambda first, rest: f"91{first}{rest}",
    st.sampled_from("6789"),
    st.text("0123456789", min_size=9, max_size=9),
).filter(_valid)
# The ways people write numbers that the API tolerates: +, spaces, dashes, dots, brackets.
_written = st.sampled_from(
    [
        lambda d: d,
        lambda d: f"+{d}",
        lambda d: f"+{d[:2]} {d[2:7]}-{d[7:]}",
        lambda d: f"{d[:2]} {d[2:]}",
        lambda d: f"({d[:2]}) {d[2:7]}.{d[7:]}",
    ]
)
schemathesis.openapi.format("phone", st.builds(lambda digits, write: write(digits), _digits, _written))


def _media_url(kind: str) -> str:
    return f"{CONTEXT['receiver']}/media/{kind}"


def _data_url(kind: str) -> str:
    mimetype, data = {
        "image": ("image/png", CONTEXT["png"]),
        "sticker": ("image/png", CONTEXT["png"]),
        "video": ("video/mp4", CONTEXT["mp4"]),
        "audio": ("audio/ogg", CONTEXT["ogg"]),
        "document": ("application/pdf", CONTEXT["pdf"]),
    }[kind]
    return f"data:{mimetype};base64,{data}"


def _local(url: str, path: str | None = None) -> str:
    """The same URL on the test's receiver (keeping its path unless given one)."""
    parts = urlsplit(url.strip())
    return CONTEXT["receiver"] + (
        path if path is not None else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    )


def _media_value(value: object, kind: str) -> object:
    """A media field (URL, data URL or {url|data, ...}) with a real file of `kind` behind it."""
    if isinstance(value, str):
        if URL_PATTERN.match(value):
            return _media_url(kind)
        if value.startswith("data:") and ";base64," in value:
            return _data_url(kind)
        return value
    if isinstance(value, dict):
        value = dict(value)
        for name in ("url", "data"):
            if isinstance(value.get(name), str):
                value[name] = _media_value(value[name], kind)
        return value
    return value


def _localize(body: object) -> object:
    """Every http(s) URL in the body, on loopback (the fuzzed server allows private URLs)."""
    if isinstance(body, dict):
        return {key: _localize(value) for key, value in body.items()}
    if isinstance(body, list):
        return [_localize(value) for value in body]
    if isinstance(body, str) and URL_PATTERN.match(body) and not body.startswith(CONTEXT["receiver"]):
        return _local(body, "/hook")
    return body


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation.definition.raw.get("operationId", "")
    if isinstance(case.body, dict):
        case.body = _localize(_existing_references(_real_media(dict(case.body), operation), operation, case))
    if operation == "listMessages" and _is_id((case.query or {}).get("cursor")):
        case.query["cursor"] = CONTEXT["message"]
    _spare_what_the_run_needs(operation, case)


def _real_media(body: dict, operation: str) -> dict:
    for field, kind in MEDIA_KINDS.items():
        if field in body:
            body[field] = _media_value(body[field], kind)
    if operation == "sendMedia" and body.get("mediaType") in ("image", "video", "document", "sticker"):
        body["mediaUrl"] = _media_value(body.get("mediaUrl"), body["mediaType"])
    if operation == "sendAudio":
        body["audioUrl"] = _media_value(body.get("audioUrl"), "audio")
    return body


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _existing_references(body: dict, operation: str, case) -> dict:
    """Ids in a body name things that exist: the run's group, messages, poll, sessions; expiries lie ahead."""
    if isinstance(body.get("to"), str) and GROUP_ID.match(body["to"]):
        body["to"] = CONTEXT["group"]
    quoted = body.get("quoted")
    if _is_id(quoted):
        body["quoted"] = CONTEXT["message"]
    elif isinstance(quoted, dict) and _is_id(quoted.get("messageId")):
        body["quoted"] = {**quoted, "messageId": CONTEXT["message"]}
    reaction = body.get("reaction")
    if isinstance(reaction, dict) and _is_id(reaction.get("messageId")):
        body["reaction"] = {**reaction, "messageId": CONTEXT["message"]}
    vote = body.get("vote")
    if isinstance(vote, dict) and _is_id(vote.get("messageId")) and isinstance(vote.get("options"), list):
        body["vote"] = {**vote, "messageId": CONTEXT["poll"], "options": CONTEXT["pollOptions"][:1]}
    if operation == "register" and isinstance(body.get("email"), str) and "@" in body["email"]:
        body["email"] = _deliverable(body["email"])
    if operation == "createWebhook" and body.get("sessionId") in (None, ""):
        # Endpoints the fuzzer adds hear the spare session, so they do not multiply every event of the run.
        body["sessionId"] = CONTEXT["spareSession"]
    if operation == "updateWebhook" and "sessionId" in body:
        # An endpoint's session cannot change: the one it has (the run's own endpoint is
        # account-wide; the fuzzer's, and the spare, hear the spare session).
        body["sessionId"] = (
            None if case.path_parameters.get("webhookId") == CONTEXT["webhook"] else CONTEXT["spareSession"]
        )
    if operation == "createApiKey":
        ids = body.get("sessionIds")
        if isinstance(ids, list) and all(isinstance(item, str) for item in ids):
            body["sessionIds"] = [CONTEXT["session"]] if ids else []
        body["expiresAt"] = _ahead(body.get("expiresAt"))
    if "sendAt" in body:
        body["sendAt"] = _ahead(body["sendAt"])
    if isinstance(body.get("timezone"), str):
        try:
            ZoneInfo(body["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            body["timezone"] = "Asia/Kolkata"
    return body


def _deliverable(email: str) -> str:
    """An address email-validator takes (it refuses special-use domains such as .test and .local)."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return f"fuzz{next(_accounts)}@example.com"
    return email


def _ahead(value: object) -> object:
    """A time that must lie ahead (a key's expiry, a scheduled send: within a year) and
    does not, moved to an hour from now."""
    if not isinstance(value, str) or not value:
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    now = datetime.now(UTC)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if now + timedelta(minutes=5) < when < now + timedelta(days=360):
        return value
    return (now + timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")


def _spare_what_the_run_needs(operation: str, case) -> None:
    path = case.path_parameters if case.path_parameters is not None else {}
    query = case.query if case.query is not None else {}
    keep = {CONTEXT["session"], CONTEXT["spareSession"]}
    if operation == "deleteSession" and path.get("sessionId") in keep:
        path["sessionId"] = CONTEXT["doomedSession"]
    spared = ("logoutSession", "disconnectSession", "setSessionPace", "resumeSession")
    if operation in spared and path.get("sessionId") == CONTEXT["session"]:
        path["sessionId"] = CONTEXT["spareSession"]
    if operation.endswith("SimulatorFaults") and query.get("sessionId") == CONTEXT["session"]:
        query["sessionId"] = CONTEXT["spareSession"]
    if operation == "leaveGroup" and path.get("groupId") == CONTEXT["group"]:
        path["groupId"] = CONTEXT["doomedGroup"]
    if operation in ("revokeApiKey", "deleteKey") and path.get("keyId") == CONTEXT["apiKeyId"]:
        path["keyId"] = CONTEXT["spareApiKeyId"]
    if operation == "deleteWebhook" and path.get("webhookId") == CONTEXT["webhook"]:
        path["webhookId"] = CONTEXT["spareWebhook"]
