"""The OpenAPI 3.1 document of wagate's HTTP API, served at GET /api/openapi.json and read at /docs.

One home for the contract: every public route, its parameters, request body, answers and
errors. tests/test_openapi.py fails when a route exists that this document leaves out (or
the other way round), and tests/test_openapi_fuzz.py runs schemathesis against a live
server with it, so the document cannot drift from what the server does.

The document is built once from the small helpers below; `openapi_document()` returns a
copy with the caller's server URL.
"""

from __future__ import annotations

import copy
from typing import Any

from engines.base import PRESENCE_CHAT_STATES, PRESENCE_SEEN, PRESENCE_STATES
from engines.outgoing import KINDS
from engines.simulator import FAULTS
from models.message import MessageStatus
from services.events.stream import STREAMED
from services.webhooks.endpoints import EVENTS

Schema = dict[str, Any]

SESSION_STATUSES = ["connecting", "pending", "connected", "reconnecting", "disconnected", "error"]
MESSAGE_STATUSES = [str(status) for status in MessageStatus]
DELIVERY_STATUSES = ["pending", "failed", "succeeded", "dead"]
GROUP_ACTIONS = ["add", "remove", "promote", "demote"]
MEDIA_FIELDS = ["image", "video", "audio", "voice", "document", "sticker"]
OTHER_KIND_FIELDS = ["location", "contact", "poll", "reaction"]
KIND_FIELDS = MEDIA_FIELDS + OTHER_KIND_FIELDS
STREAMED_EVENTS = sorted(STREAMED)

BEARER = [{"bearerAuth": []}, {"apiKeyHeader": []}]
# The legacy /api/whatsapp/* routes also answer trusted networks without credentials.
LEGACY = [*BEARER, {}]
PUBLIC: list = []


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null (OpenAPI 3.1 spells it as a type list)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], required: tuple[str, ...] | list[str] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema | extra


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
TRUE: Schema = {"type": "boolean", "const": True}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "examples": ["2024-01-15T10:30:00.000Z"]}
TIMESTAMP_OR_NULL = nullable(TIMESTAMP)
STRING_OR_NULL = nullable(STRING)
# A phone number with its country code; '+', spaces, dashes, dots and brackets are tolerated.
# Whether it is a real number is checked per country (the `phone` format), which no pattern says.
PHONE: Schema = {
    "type": "string",
    "format": "phone",
    "minLength": 8,
    "description": "Phone number with country code, e.g. 919876543210 ('+', spaces and dashes are tolerated)",
    "examples": ["919876543210"],
}
GROUP_ID: Schema = {
    "type": "string",
    "pattern": r"^\s*[0-9]{5,25}(-[0-9]{5,15})?@g\.us\s*$",
    "description": "A WhatsApp group id",
    "examples": ["120363025246125888@g.us"],
}
URL: Schema = {"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
DATA_URL: Schema = {"type": "string", "pattern": "^data:[^,]*;base64,", "description": "A base64 data URL"}


# -- components ---------------------------------------------------------------------------

ERROR = obj(
    {
        "error": {"type": "string", "description": "A short title", "examples": ["Session not found"]},
        "message": {"type": "string", "description": "What went wrong and what to do about it"},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$", "examples": ["SESSION_NOT_FOUND"]},
        "field": {"type": "string", "description": "The request field at fault, when there is one"},
    },
    ["error", "message", "code"],
    description='Every error: {"error", "message", "code"} (some add details such as `field`).',
)

USER = obj({"userId": STRING, "email": STRING, "username": STRING}, ["userId", "email", "username"])

PLAN = obj(
    {
        "id": STRING,
        "name": STRING,
        "priceInr": INTEGER,
        "maxSessions": INTEGER,
        "apiRateLimit": {"type": "string", "examples": ["100 per 15 minutes"]},
        "features": array(STRING),
        "dailyMessageLimit": nullable(INTEGER),
        "trialMessageLimit": nullable(INTEGER),
        "trialDays": nullable(INTEGER),
    },
    ["id", "name", "maxSessions", "apiRateLimit", "features"],
)

ACCOUNT = {
    "allOf": [
        ref("User"),
        obj({"isAdmin": BOOLEAN, "plan": ref("Plan"), "createdAt": TIMESTAMP}, ["isAdmin", "plan", "createdAt"]),
    ]
}

QUOTA = obj(
    {
        "period": {"type": "string", "enum": ["day", "trial"]},
        "limit": nullable({"type": "integer", "description": "null: no limit on this plan"}),
        "used": INTEGER,
        "remaining": nullable(INTEGER),
        "resetsAt": TIMESTAMP,
        "trialEnded": BOOLEAN,
    },
    ["period", "limit", "used", "remaining", "resetsAt", "trialEnded"],
)

SESSION_STATUS = {"type": "string", "enum": SESSION_STATUSES}

SESSION = obj(
    {
        "sessionId": STRING,
        "name": STRING,
        "description": STRING_OR_NULL,
        "phone": STRING_OR_NULL,
        "status": SESSION_STATUS,
        "hasQR": BOOLEAN,
        "messagesSent": INTEGER,
        "messagesReceived": INTEGER,
        "createdAt": TIMESTAMP,
    },
    ["sessionId", "name", "status", "hasQR", "messagesSent", "messagesReceived", "createdAt"],
)

SESSION_DETAIL = {
    "allOf": [
        ref("Session"),
        obj(
            {"statusReason": STRING_OR_NULL, "connectedAt": TIMESTAMP_OR_NULL, "updatedAt": TIMESTAMP_OR_NULL},
            ["statusReason", "connectedAt", "updatedAt"],
        ),
    ]
}

SESSION_STATE = obj(
    {
        "sessionId": STRING,
        "status": SESSION_STATUS,
        "phone": STRING_OR_NULL,
        "hasQR": BOOLEAN,
        "reason": STRING_OR_NULL,
    },
    ["sessionId", "status", "phone", "hasQR", "reason"],
)

SENT = obj(
    {
        "success": BOOLEAN,
        "message": {"type": "string", "examples": ["Message sent successfully"]},
        "messageId": STRING,
        "status": {"type": "string", "enum": MESSAGE_STATUSES},
        "to": STRING,
        "simulated": {"type": "boolean", "description": "Present (true) for a test key's send: nothing was sent"},
        "sendAt": {**TIMESTAMP, "description": "When a scheduled message goes (status `scheduled`)"},
    },
    ["success", "message", "messageId", "status", "to"],
)

SEND_FAILURE = {
    "allOf": [
        ref("Error"),
        obj(
            {
                "success": {"type": "boolean", "const": False},
                "messageId": STRING,
                "status": {"type": "string", "const": "failed"},
                "quotaRefunded": BOOLEAN,
                "retryable": BOOLEAN,
            }
        ),
    ],
    "description": "An error; when the message was accepted and then failed on WhatsApp's side it also carries "
    "`success: false`, `messageId`, `status: failed`, `quotaRefunded` and `retryable`.",
}

MESSAGE = obj(
    {
        "messageId": STRING,
        "sessionId": STRING,
        "batchId": STRING_OR_NULL,
        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
        "to": {"type": "string", "description": "The recipient (outbound messages)"},
        "from": {"type": "string", "description": "The sender (inbound messages)"},
        "message": {"type": "string", "description": "The text, a caption, or what the message is"},
        "type": {"type": "string", "enum": list(KINDS)},
        "content": {"type": "object", "description": "The kind's details beyond text (media facts, location...)"},
        "mediaUrl": {"type": "string", "description": "Where its file is served (GET /api/messages/{id}/media)"},
        "status": {"type": "string", "enum": MESSAGE_STATUSES},
        "error": STRING_OR_NULL,
        "errorCode": STRING_OR_NULL,
        "waMessageId": STRING_OR_NULL,
        "createdAt": TIMESTAMP,
        "sentAt": TIMESTAMP_OR_NULL,
        "deliveredAt": TIMESTAMP_OR_NULL,
        "readAt": TIMESTAMP_OR_NULL,
        "playedAt": TIMESTAMP_OR_NULL,
        "failedAt": TIMESTAMP_OR_NULL,
    },
    ["messageId", "sessionId", "direction", "message", "type", "status", "createdAt"],
)

FAILED_MESSAGE = obj(
    {
        "id": STRING,
        "recipient": STRING,
        "error": STRING_OR_NULL,
        "code": STRING_OR_NULL,
        "timestamp": TIMESTAMP_OR_NULL,
        "message": {"type": "string", "description": "The first 26 characters of the text"},
        "sessionId": STRING,
    },
    ["id", "recipient", "error", "timestamp", "message"],
)

DAY_COUNTS = array(INTEGER, minItems=7, maxItems=7)
STATS = obj(
    {
        "success": TRUE,
        "totals": obj(
            {name: INTEGER for name in ("sent", "delivered", "read", "failed", "total", "received")},
            ["sent", "delivered", "read", "failed", "total"],
        ),
        "chart": obj(
            {
                "labels": array(STRING, minItems=7, maxItems=7),
                **dict.fromkeys(("sent", "delivered", "read", "failed"), DAY_COUNTS),
            },
            ["labels", "sent", "delivered", "read", "failed"],
        ),
    },
    ["success", "totals", "chart"],
)

CONTACT = obj(
    {
        "phone": STRING,
        "sessionId": STRING,
        "name": STRING_OR_NULL,
        "savedName": STRING_OR_NULL,
        "addressBookName": STRING_OR_NULL,
        "pushName": STRING_OR_NULL,
        "tags": array(STRING),
        "notes": STRING,
        "inAddressBook": BOOLEAN,
        "lastMessageAt": TIMESTAMP_OR_NULL,
        "updatedAt": TIMESTAMP_OR_NULL,
    },
    ["phone", "sessionId", "name", "tags", "notes", "inAddressBook"],
)

GROUP = obj(
    {
        "id": GROUP_ID | {"pattern": r"^[0-9]{5,25}(-[0-9]{5,15})?@g\.us$"},
        "name": STRING,
        "topic": STRING_OR_NULL,
        "owner": STRING_OR_NULL,
        "createdAt": STRING_OR_NULL,
        "participants": array(
            obj(
                {"phone": STRING, "role": {"type": "string", "enum": ["member", "admin", "superadmin"]}},
                ["phone", "role"],
            )
        ),
    },
    ["id", "name", "participants"],
)

NUMBER_CHECK = obj(
    {
        "phone": STRING,
        "exists": BOOLEAN,
        "waId": nullable({"type": "string", "description": "The number's WhatsApp id when it is on WhatsApp"}),
        "cached": {"type": "boolean", "description": "Answered from the cache, without asking WhatsApp"},
    },
    ["phone", "exists", "waId", "cached"],
)

API_KEY = obj(
    {
        "id": STRING,
        "name": STRING,
        "mode": {"type": "string", "enum": ["live", "test"]},
        "prefix": {"type": "string", "examples": ["wag_live_3f9a"]},
        "sessionIds": array(STRING, description="The sessions the key may use (empty: all)"),
        "expiresAt": TIMESTAMP_OR_NULL,
        "lastUsedAt": TIMESTAMP_OR_NULL,
        "createdAt": TIMESTAMP,
        "revoked": BOOLEAN,
        "revokedAt": TIMESTAMP_OR_NULL,
    },
    ["id", "name", "mode", "prefix", "sessionIds", "expiresAt", "lastUsedAt", "createdAt", "revoked", "revokedAt"],
)

WEBHOOK = obj(
    {
        "id": STRING,
        "url": STRING,
        "events": array({"type": "string", "enum": list(EVENTS)}),
        "sessionId": nullable({"type": "string", "description": "null: every session of the account"}),
        "enabled": BOOLEAN,
        "disabledReason": STRING_OR_NULL,
        "disabledAt": TIMESTAMP_OR_NULL,
        "consecutiveFailures": INTEGER,
        "secretHint": STRING,
        "lastSuccessAt": TIMESTAMP_OR_NULL,
        "lastFailureAt": TIMESTAMP_OR_NULL,
        "createdAt": TIMESTAMP,
        "updatedAt": TIMESTAMP_OR_NULL,
    },
    ["id", "url", "events", "sessionId", "enabled", "consecutiveFailures", "secretHint", "createdAt"],
)

WEBHOOK_DELIVERY = obj(
    {
        "id": {"type": "string", "description": "The delivery id, the same on every attempt"},
        "webhookId": STRING,
        "event": STRING,
        "sessionId": STRING_OR_NULL,
        "test": BOOLEAN,
        "status": {"type": "string", "enum": DELIVERY_STATUSES},
        "attempts": INTEGER,
        "nextAttemptAt": TIMESTAMP_OR_NULL,
        "createdAt": TIMESTAMP,
        "payload": {"type": "object", "description": "The body every attempt sends"},
        "attemptLog": array(
            obj(
                {
                    "attempt": INTEGER,
                    "at": TIMESTAMP,
                    "success": BOOLEAN,
                    "statusCode": nullable(INTEGER),
                    "error": STRING_OR_NULL,
                    "latencyMs": nullable(INTEGER),
                    "response": nullable({"type": "string", "description": "The first 500 characters of the answer"}),
                },
                ["attempt", "at", "success"],
            )
        ),
    },
    ["id", "webhookId", "event", "test", "status", "attempts", "createdAt", "payload"],
)

BULK_REPORT = obj(
    {
        "success": TRUE,
        "batchId": STRING,
        "sessionId": STRING,
        "status": {"type": "string", "enum": ["scheduled", "running", "finished", "cancelled"]},
        "sendAt": {**TIMESTAMP, "description": "When a scheduled batch starts"},
        "delay": {"type": "integer", "description": "Milliseconds between sends, after the server's floor"},
        "createdAt": TIMESTAMP_OR_NULL,
        "finishedAt": TIMESTAMP_OR_NULL,
        "total": INTEGER,
        "sent": INTEGER,
        "failed": INTEGER,
        "pending": INTEGER,
        "results": array(
            obj(
                {
                    "contact": {"description": "The contact as given: a number, or the JSON value refused"},
                    "success": BOOLEAN,
                    "status": {"type": "string", "enum": ["Sent", "Failed", "Pending", "Cancelled"]},
                    "error": STRING_OR_NULL,
                    "messageId": STRING,
                },
                ["contact", "status"],
            )
        ),
        "progressUrl": {"type": "string", "format": "uri", "description": "Where a long batch's progress is (202)"},
        "simulated": BOOLEAN,
    },
    ["success", "batchId", "status", "total", "sent", "failed", "pending", "results"],
)

HEALTH = obj(
    {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "additionalProperties": obj({"ok": BOOLEAN, "error": STRING, "alive": array(STRING)}, ["ok"]),
        },
    },
    ["status", "checks"],
)

FAULT_STATE = obj(
    {
        "scope": {"type": "string", "description": "The session id, or * for every session"},
        "faults": array({"type": "string", "enum": list(FAULTS)}),
    },
    ["scope", "faults"],
)

SCHEMAS = {
    "Error": ERROR,
    "User": USER,
    "Plan": PLAN,
    "Account": ACCOUNT,
    "Quota": QUOTA,
    "Session": SESSION,
    "SessionDetail": SESSION_DETAIL,
    "SessionState": SESSION_STATE,
    "Sent": SENT,
    "SendFailure": SEND_FAILURE,
    "Message": MESSAGE,
    "FailedMessage": FAILED_MESSAGE,
    "Stats": STATS,
    "Contact": CONTACT,
    "Group": GROUP,
    "NumberCheck": NUMBER_CHECK,
    "ApiKey": API_KEY,
    "Webhook": WEBHOOK,
    "WebhookDelivery": WEBHOOK_DELIVERY,
    "BulkReport": BULK_REPORT,
    "Health": HEALTH,
    "FaultState": FAULT_STATE,
}


STREAM_EVENT = obj(
    {
        "id": {
            "type": "string",
            "pattern": "^[0-9]{1,15}-[0-9]{1,10}$",
            "description": "Send it back as Last-Event-ID",
        },
        "event": {"type": "string", "enum": STREAMED_EVENTS},
        "data": {"type": "string", "contentMediaType": "application/json", "description": "The Socket.IO payload"},
        "retry": INTEGER,
    },
    ["event", "data"],
    description="One event of the stream",
)

# -- request bodies -----------------------------------------------------------------------

# Text that is not only whitespace (Python's whitespace, which the server strips).
NOT_BLANK = "[^" + "".join(f"\\u{code:04x}" for code in range(0x110000) if chr(code).isspace()) + "]"
ABSENT: Schema = {"type": "null", "description": "Left out (null is the same)"}
MEDIA_SOURCE = {"anyOf": [URL, DATA_URL]}
NO_TEXT = nullable({"type": "string", "maxLength": 0})
FLAG = nullable(BOOLEAN)
NOT_TRUE = {"enum": [False, None]}


def _media(kind: str) -> Schema:
    """A media field: an http(s) or data URL, or {url | data, caption?, filename?, viewOnce?, ptt?}."""
    captioned = kind in ("image", "video", "document")
    properties = {
        "caption": nullable({"type": "string", "maxLength": 1024}) if captioned else NO_TEXT,
        "viewOnce": FLAG if kind in ("image", "video", "audio", "voice") else NOT_TRUE,
    }
    if kind == "document":
        properties["filename"] = nullable({"type": "string", "pattern": NOT_BLANK, "description": "e.g. invoice.pdf"})
    if kind == "audio":
        properties["ptt"] = FLAG
    spec = {
        "type": "object",
        "properties": properties,
        "anyOf": [
            {"required": ["url"], "properties": {"url": MEDIA_SOURCE}},
            {"required": ["data"], "properties": {"url": ABSENT, "data": MEDIA_SOURCE}},
        ],
    }
    return {
        "anyOf": [MEDIA_SOURCE, spec],
        "description": "An http(s) URL or a data URL, or an object with `url` or `data`",
    }


SHORT_TEXT = {"type": "string", "maxLength": 256, "pattern": NOT_BLANK, "description": "Not only whitespace"}
TEXT = {"type": "string", "maxLength": 4096, "pattern": NOT_BLANK, "description": "The text; not only whitespace"}
LATITUDE = {"type": "number", "minimum": -90, "maximum": 90}
LONGITUDE = {"type": "number", "minimum": -180, "maximum": 180}


def _either(name: str, alias: str, schema: Schema) -> list[Schema]:
    """`name`, or when it is left out, `alias`."""
    return [
        {"required": [name], "properties": {name: schema}},
        {"not": {"required": [name]}, "required": [alias], "properties": {alias: schema}},
    ]


KIND_SCHEMAS: dict[str, Schema] = {
    **{kind: _media(kind) for kind in MEDIA_FIELDS},
    "location": {
        "type": "object",
        "properties": {"name": nullable(SHORT_TEXT), "address": nullable(SHORT_TEXT)},
        "allOf": [
            {"anyOf": _either("latitude", "lat", LATITUDE)},
            {"anyOf": _either("longitude", "lng", LONGITUDE)},
        ],
        "examples": [{"latitude": 19.076, "longitude": 72.8777, "name": "Gateway of India"}],
    },
    "contact": obj({"fullName": SHORT_TEXT, "phoneNumber": PHONE}, ["fullName", "phoneNumber"]),
    "poll": {
        "type": "object",
        "required": ["options"],
        "properties": {
            "options": array(
                {"type": "string", "maxLength": 100, "pattern": NOT_BLANK},
                minItems=2,
                maxItems=12,
                uniqueItems=True,
                description="2 to 12 different answers",
            ),
            "multipleAnswers": BOOLEAN,
        },
        "anyOf": _either("question", "name", SHORT_TEXT),
    },
    "reaction": obj(
        {
            "messageId": {"type": "string", "pattern": NOT_BLANK, "description": "The message (ours or WhatsApp's id)"},
            "emoji": {"type": "string", "maxLength": 16, "description": 'One emoji; "" takes the reaction back'},
        },
        ["messageId", "emoji"],
    ),
}
MESSAGE_ID = {"type": "string", "pattern": NOT_BLANK}
SEND_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "Send it then (within a year) instead of now; a time just past sends now",
    "examples": ["2026-12-01T09:30:00+05:30"],
}
SEND_AT = nullable(SEND_TIME)
COMMON_PROPERTIES = {
    "quoted": nullable(
        {
            "anyOf": [MESSAGE_ID, obj({"messageId": MESSAGE_ID}, ["messageId"])],
            "description": "Reply to this message (our id or WhatsApp's)",
        }
    ),
    "mentions": nullable(array(PHONE, maxItems=50, description="Phone numbers mentioned in the text or caption")),
}


def _kind_branch(kind: str | None) -> Schema:
    """One kind of message: its own fields, and every other kind's field left out (or null)."""
    others = {name: ABSENT for name in KIND_FIELDS if name != kind}
    if kind is None:
        return {
            "title": "text",
            "properties": others | {"linkPreview": BOOLEAN},
            "anyOf": [
                {"title": "message", "required": ["message"], "properties": {"message": TEXT}},
                {"title": "text", "required": ["text"], "properties": {"message": ABSENT, "text": TEXT}},
            ],
        }
    branch: Schema = {"title": kind, "required": [kind], "properties": others | {kind: KIND_SCHEMAS[kind]}}
    if kind in MEDIA_FIELDS:
        caption = nullable({"type": "string", "maxLength": 1024}) if kind in ("image", "video", "document") else NO_TEXT
        branch["properties"] |= {
            "caption": caption,
            "message": caption,
            "viewOnce": FLAG if kind in ("image", "video", "audio", "voice") else NOT_TRUE,
        }
    if kind == "audio":
        branch["properties"]["ptt"] = FLAG
    return branch


MESSAGE_KINDS = {
    "anyOf": [_kind_branch(None), *(_kind_branch(kind) for kind in KIND_FIELDS)],
    "description": "Text by default (`message`, as WAMessenger sends it, or `text`), or the one kind field present: "
    "image, video, audio (`ptt: true`, or `voice`, for a voice note), document, sticker, location, contact, poll "
    "or reaction. A media message's caption is its `caption` (or the body's, or `message`).",
}
SEND_BODY = {
    "type": "object",
    "required": ["to"],
    "properties": {
        "to": {"anyOf": [PHONE, GROUP_ID], "description": "A phone number with country code, or a group id"},
        "sendAt": SEND_AT,
        **COMMON_PROPERTIES,
    },
    "allOf": [MESSAGE_KINDS],
}


# -- responses and parameters ---------------------------------------------------------------


def header(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "schema": schema or INTEGER}


RATE_HEADERS = {
    "X-RateLimit-Limit": {"$ref": "#/components/headers/X-RateLimit-Limit"},
    "X-RateLimit-Remaining": {"$ref": "#/components/headers/X-RateLimit-Remaining"},
    "X-RateLimit-Reset": {"$ref": "#/components/headers/X-RateLimit-Reset"},
}
REQUEST_ID = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
HEADERS = {
    "X-RateLimit-Limit": header("The limit: requests per window, or on a send reply the plan's message quota"),
    "X-RateLimit-Remaining": header("What is left of it"),
    "X-RateLimit-Reset": header("When it resets (Unix seconds)"),
    "Retry-After": header("Seconds to wait before trying again"),
    "X-Request-ID": header("This request's id (a valid incoming X-Request-ID is echoed)", STRING),
}

ERROR_TITLES = {
    400: "Invalid request parameters",
    401: "Missing or invalid authentication token",
    402: "Subscription required (the trial is over)",
    403: "Not allowed (plan, key or role)",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the resource's state",
    413: "Request or media too large",
    415: "Unsupported media type",
    429: "Rate limit or quota exceeded",
    502: "WhatsApp's side failed",
    503: "Service unavailable; try again",
    504: "Timed out waiting for WhatsApp or the engine host",
}
RETRY_STATUSES = {429, 503}


def error_response(status: int) -> Schema:
    headers = dict(REQUEST_ID)
    if status in RETRY_STATUSES:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {
        "description": ERROR_TITLES[status],
        "headers": headers,
        "content": {"application/json": {"schema": ref("Error")}},
    }


def json_response(description: str, schema: Schema, headers: dict | None = None) -> Schema:
    return {
        "description": description,
        "headers": REQUEST_ID | (headers or {}),
        "content": {"application/json": {"schema": schema}},
    }


def errors(*statuses: int) -> dict[str, Schema]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


def filter_param(name: str, description: str, schema: Schema) -> Schema:
    """An optional query filter; an empty value (`?status=`) is the same as leaving it out."""
    return query(name, description, {"anyOf": [schema, {"const": ""}]})


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema or STRING}


def query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def body(schema: Schema, *, required: bool = True, example: Schema | None = None) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


SESSION_ID = path_param("sessionId", "The session's id")
# The phone to link: 8 to 15 digits with the country code ('+', spaces, dashes, brackets allowed).
PAIRING_PHONE = {"type": "string", "pattern": r"^[+ ()-]*([0-9][+ ()-]*){8,15}$", "examples": ["919876543210"]}
GROUP_ID_PARAM = path_param("groupId", "The group's id (…@g.us)", GROUP_ID)
LIMIT = {"type": "integer", "minimum": 1}
PAGE = {"type": "integer", "minimum": 1}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a request with the same key to get the first message back instead of sending again",
    "schema": {"type": "string", "maxLength": 255},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "Resume after this event id (the `id:` of the last event received)",
    "schema": {"type": "string", "pattern": "^([0-9]{1,15}-[0-9]{1,10})?$"},
}

# What every API route can answer besides its own: a missing or bad credential, and its limit.
AUTHED = (401, 429)
# A JSON request body: malformed (400) or larger than MAX_CONTENT_LENGTH (413).
WITH_BODY = (400, 413)
# Routes that hand work to the engine host: the job queue can be unreachable.
ENGINE = (503,)


def op(
    summary: str,
    tag: str,
    operation_id: str,
    responses: dict[str, Schema],
    *,
    description: str = "",
    parameters: list[Schema] | None = None,
    request_body: Schema | None = None,
    security: list | None = None,
) -> Schema:
    operation: Schema = {"tags": [tag], "summary": summary, "operationId": operation_id}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if request_body:
        operation["requestBody"] = request_body
    operation["responses"] = responses
    operation["security"] = BEARER if security is None else security
    return operation


def ok(description: str, schema: Schema, status: int = 200, headers: dict | None = None) -> dict[str, Schema]:
    return {str(status): json_response(description, schema, headers)}


def success(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """`{"success": true, ...}`, the shape of most answers that are not WAMessenger's own."""
    return obj({"success": TRUE, **properties}, ["success", *required])


SEND_RESPONSES = {
    "200": json_response("Sent", ref("Sent"), RATE_HEADERS),
    "202": json_response("Accepted and queued; message_status events follow", ref("Sent"), RATE_HEADERS),
    **{
        str(status): json_response(ERROR_TITLES[status], ref("SendFailure"), RATE_HEADERS) for status in (400, 502, 504)
    },
    "402": json_response(ERROR_TITLES[402], ref("Error"), RATE_HEADERS),
    **{
        str(status): json_response(
            ERROR_TITLES[status],
            ref("SendFailure"),
            RATE_HEADERS | {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
        )
        for status in (429, 503)
    },
    **errors(401, 403, 404, 409, 413, 415),
}


# -- the paths ----------------------------------------------------------------------------


def _paths() -> dict[str, dict[str, Schema]]:
    paths: dict[str, dict[str, Schema]] = {}

    def route(path: str, method: str, operation: Schema) -> None:
        paths.setdefault(path, {})[method] = operation

    # Accounts
    credentials = obj(
        {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {"type": "string", "minLength": 8, "maxLength": 1024},
        },
        ["email", "password"],
    )
    registered = obj({"message": STRING, "token": STRING, "user": ref("User")}, ["message", "token", "user"])
    route(
        "/api/register",
        "post",
        op(
            "Register an account",
            "Accounts",
            "register",
            ok("Registered: the token to use", registered, 201) | errors(400, 409, 413, 429),
            description="Register and get a JWT. Limited per IP (`AUTH_RATE_LIMIT`, 5 per 15 minutes).",
            request_body=body(
                credentials
                | {
                    "properties": credentials["properties"]
                    | {
                        "username": nullable(
                            {"type": "string", "maxLength": 64, "description": "Defaults to the email's local part"}
                        )
                    }
                }
            ),
            security=PUBLIC,
        ),
    )
    route(
        "/api/login",
        "post",
        op(
            "Log in",
            "Accounts",
            "login",
            ok("Logged in: the token to use", registered) | errors(400, 401, 413, 429),
            description="Exchange email and password for a JWT (valid `JWT_EXPIRES_SECONDS`, 7 days).",
            request_body=body(
                obj(
                    {"email": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1}},
                    ["email", "password"],
                )
            ),
            security=PUBLIC,
        ),
    )
    route(
        "/api/me",
        "get",
        op(
            "Your account",
            "Accounts",
            "me",
            ok(
                "The account, its plan and its quota",
                success({"user": ref("Account"), "quota": ref("Quota")}, ("user", "quota")),
            )
            | errors(*AUTHED),
        ),
    )
    route(
        "/api/quota",
        "get",
        op(
            "Your message quota",
            "Accounts",
            "quota",
            ok("Where the account stands in its quota", success({"quota": ref("Quota")}, ("quota",))) | errors(*AUTHED),
        ),
    )

    # Sessions
    session_fields = {
        "name": nullable({"type": "string", "maxLength": 100, "description": "Defaults to My Session"}),
        "description": nullable({"type": "string", "maxLength": 500}),
    }
    created = success(
        {"sessionId": STRING, "name": STRING, "status": SESSION_STATUS, "message": STRING},
        ("sessionId", "name", "status", "message"),
    )
    route(
        "/api/sessions",
        "post",
        op(
            "Create a session",
            "Sessions",
            "createSession",
            ok("Created; its QR code follows", created, 201) | errors(*WITH_BODY, *AUTHED, 403, *ENGINE),
            description="The engine starts pairing it at once: get its QR code next. A full account gets "
            "`403 SESSION_LIMIT_REACHED`.",
            request_body=body(obj(session_fields), required=False),
        ),
    )
    route(
        "/api/sessions",
        "get",
        op(
            "List sessions",
            "Sessions",
            "listSessions",
            ok("Your sessions", obj({"sessions": array(ref("Session")), "total": INTEGER}, ["sessions", "total"]))
            | errors(*AUTHED),
        ),
    )
    session_path = "/api/sessions/{sessionId}"
    route(
        session_path,
        "get",
        op(
            "Show a session",
            "Sessions",
            "getSession",
            ok("The session", ref("SessionDetail")) | errors(*AUTHED, 403, 404),
            parameters=[SESSION_ID],
        ),
    )
    route(
        session_path,
        "patch",
        op(
            "Rename a session",
            "Sessions",
            "updateSession",
            ok("Changed", success({"session": ref("SessionDetail")}, ("session",)))
            | errors(*WITH_BODY, *AUTHED, 403, 404),
            parameters=[SESSION_ID],
            request_body=body(
                obj(
                    {
                        "name": {"type": "string", "maxLength": 100, "pattern": NOT_BLANK},
                        "description": {"type": "string", "maxLength": 500},
                    },
                    minProperties=1,
                    additionalProperties=False,
                )
            ),
        ),
    )
    route(
        session_path,
        "delete",
        op(
            "Delete a session",
            "Sessions",
            "deleteSession",
            ok("Deleted; the device is unlinked", success({"sessionId": STRING, "message": STRING}, ("sessionId",)))
            | errors(*AUTHED, 403, 404, *ENGINE),
            parameters=[SESSION_ID],
        ),
    )
    acted = success({"sessionId": STRING, "status": SESSION_STATUS, "message": STRING}, ("sessionId", "message"))
    for action, summary, description in (
        ("connect", "Bring a session online", "A new QR code if it is not paired."),
        ("disconnect", "Take a session offline", "The phone stays linked."),
        ("logout", "Unlink the phone", "A new QR scan is needed to use the session again."),
    ):
        route(
            f"{session_path}/{action}",
            "post",
            op(
                summary,
                "Sessions",
                f"{action}Session",
                ok("Done (the engine host carries it out)", acted) | errors(*AUTHED, 403, 404, *ENGINE),
                description=description,
                parameters=[SESSION_ID],
            ),
        )
    qr = obj(
        {
            "qrCode": nullable({"type": "string", "pattern": "^data:image/png;base64,"}),
            "status": SESSION_STATUS,
            "expiresAt": TIMESTAMP_OR_NULL,
            "message": {"type": "string", "description": "Why there is no QR code to scan"},
            "reason": STRING_OR_NULL,
            "pairUrl": {
                **nullable({"type": "string", "format": "uri"}),
                "description": "Simulator only: the URL the QR code encodes; a POST to it is the simulated phone "
                'scanning the code (`{"phone"}` optional)',
            },
        },
        ["qrCode", "status", "expiresAt"],
    )
    route(
        f"{session_path}/qr",
        "get",
        op(
            "The QR code to scan",
            "Sessions",
            "getSessionQr",
            ok("The QR code as a PNG data URL, or null with a message", qr) | errors(*AUTHED, 403, 404),
            description="Waits up to `QR_WAIT_SECONDS` for the first QR code of a new session.",
            parameters=[SESSION_ID],
        ),
    )
    route(
        f"{session_path}/status",
        "get",
        op(
            "A session's status",
            "Sessions",
            "getSessionStatus",
            ok("The status", ref("SessionState")) | errors(*AUTHED, 403, 404),
            parameters=[SESSION_ID],
        ),
    )
    _pace_paths(route, session_path)
    route(
        f"{session_path}/pair-code",
        "post",
        op(
            "Link by phone number",
            "Sessions",
            "getSessionPairCode",
            ok(
                "The code to enter on the phone",
                success(
                    {"sessionId": STRING, "code": {"type": "string", "examples": ["ABCD-EFGH"]}, "message": STRING},
                    ("sessionId", "code"),
                ),
            )
            | errors(*WITH_BODY, *AUTHED, 403, 404, 409, 503, 504),
            description="While the session shows a QR code (`409 NOT_PAIRING` otherwise).",
            parameters=[SESSION_ID],
            request_body=body(obj({"phone": PAIRING_PHONE}, ["phone"])),
        ),
    )
    route(
        f"{session_path}/stream",
        "get",
        op(
            "Live events (Server-Sent Events)",
            "Sessions",
            "streamSessionEvents",
            {
                "200": {
                    "description": "An endless event stream: `id:`, `event:` (qr, connected, disconnected, "
                    "reconnecting, message, message_status, message_reaction, poll_vote, presence_update) "
                    "and `data:` (the Socket.IO payload as JSON)",
                    "headers": REQUEST_ID,
                    "content": {"text/event-stream": {"schema": STREAM_EVENT}},
                }
            }
            | errors(400, *AUTHED, 403, 404),
            description="Reconnect with `Last-Event-ID` to get the events missed (kept `STREAM_RETENTION_SECONDS`).",
            parameters=[SESSION_ID, LAST_EVENT_ID],
        ),
    )

    # Sending
    route(
        f"{session_path}/send",
        "post",
        op(
            "Send a message",
            "Messages",
            "sendMessage",
            SEND_RESPONSES,
            description="Waits up to `SEND_WAIT_SECONDS` for the engine: 200 when sent, 202 while still queued, "
            "or the failure (400 for the client's errors, 502/503/504 for WhatsApp's side, see the refund matrix). "
            "`X-RateLimit-*` on the reply describe the plan's message quota after this send.",
            parameters=[SESSION_ID, IDEMPOTENCY_KEY],
            request_body=body(SEND_BODY, example={"to": "919876543210", "message": "Hello from wagate!"}),
        ),
    )
    _contact_paths(route)
    _message_paths(route)
    _legacy_paths(route)
    _key_paths(route)
    _webhook_paths(route)
    _simulator_paths(route)
    return paths


Route = Any  # route(path, method, operation)
SESSION_ERRORS = (*AUTHED, 403, 404)
# Calls that reach WhatsApp through the engine host and wait for its answer.
ENGINE_CALL = (409, 503, 504)


def _pace_paths(route: Route, session_path: str) -> None:
    seconds = nullable({"type": "number", "minimum": 0, "maximum": 3600})
    count = nullable({"type": "integer", "minimum": 1, "maximum": 100_000})
    clock = nullable({"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5]?[0-9]$", "examples": ["21:00"]})
    settings = {
        "minGapSeconds": seconds,
        "jitterSeconds": seconds,
        "perMinute": count,
        "perDay": count,
        "warmup": nullable(array({"type": "integer", "minimum": 1}, maxItems=60, description="Daily ceilings")),
        "quietStart": clock,
        "quietEnd": clock,
        "timezone": nullable({"type": "string", "description": "An IANA time zone", "examples": ["Asia/Kolkata"]}),
        "typing": FLAG,
    }
    view = success(
        {
            "sessionId": STRING,
            "pace": obj(
                {
                    "minGapSeconds": {"type": "number"},
                    "jitterSeconds": {"type": "number"},
                    "perMinute": INTEGER,
                    "perDay": INTEGER,
                    "warmup": array(INTEGER),
                    "quietStart": STRING_OR_NULL,
                    "quietEnd": STRING_OR_NULL,
                    "timezone": STRING,
                    "typing": BOOLEAN,
                }
            ),
            "queue": obj(
                {
                    "depth": INTEGER,
                    "scheduled": INTEGER,
                    "lanes": {"type": "integer", "description": "How many lanes (the API's, each batch's) wait"},
                    "nextSendAt": TIMESTAMP_OR_NULL,
                    "waitingFor": STRING_OR_NULL,
                    "sentLastMinute": INTEGER,
                    "sentToday": INTEGER,
                    "todayCap": INTEGER,
                },
                ["depth", "nextSendAt", "sentToday", "todayCap"],
            ),
            "paused": BOOLEAN,
            "pausedAt": TIMESTAMP_OR_NULL,
            "pausedReason": STRING_OR_NULL,
        },
        ("sessionId", "pace", "queue", "paused"),
    )
    route(
        f"{session_path}/pace",
        "get",
        op(
            "A session's pace and send queue",
            "Sessions",
            "getSessionPace",
            ok("Its pace settings, queue depth, next send, today's count and ceiling", view) | errors(*SESSION_ERRORS),
            parameters=[SESSION_ID],
        ),
    )
    route(
        f"{session_path}/pace",
        "put",
        op(
            "Change a session's pace",
            "Sessions",
            "setSessionPace",
            ok("The pace now", view) | errors(*WITH_BODY, *SESSION_ERRORS),
            description="Any of the settings; null restores a default (for the quiet hours: none).",
            parameters=[SESSION_ID],
            request_body=body(obj(settings, additionalProperties=False)),
        ),
    )
    route(
        f"{session_path}/resume",
        "post",
        op(
            "Resume a paused session's sending",
            "Sessions",
            "resumeSession",
            ok("Sending again", view) | errors(*SESSION_ERRORS, 409),
            description="After the governor (or WhatsApp) paused it; `409 NOT_PAUSED` otherwise.",
            parameters=[SESSION_ID],
        ),
    )


def _contact_paths(route: Route) -> None:
    session_path = "/api/sessions/{sessionId}"
    phone = path_param("phone", "A phone number with country code", PHONE)
    route(
        f"{session_path}/on-whatsapp/{{phone}}",
        "get",
        op(
            "Is this number on WhatsApp?",
            "Contacts",
            "checkNumber",
            ok("The answer (kept `NUMBER_CHECK_CACHE_SECONDS`)", {"allOf": [success({}), ref("NumberCheck")]})
            | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, phone],
        ),
    )
    route(
        f"{session_path}/on-whatsapp",
        "post",
        op(
            "Check up to 100 numbers",
            "Contacts",
            "checkNumbers",
            ok(
                "One answer per number, in the order given",
                success({"count": INTEGER, "results": array(ref("NumberCheck"))}, ("count", "results")),
            )
            | errors(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID],
            request_body=body(obj({"phones": array(PHONE, minItems=1, maxItems=100)}, ["phones"])),
        ),
    )
    route(
        f"{session_path}/contacts",
        "get",
        op(
            "List contacts",
            "Contacts",
            "listContacts",
            ok(
                "One page of contacts, by name",
                success(
                    {"contacts": array(ref("Contact")), "total": INTEGER, "page": INTEGER, "limit": INTEGER},
                    ("contacts", "total", "page", "limit"),
                ),
            )
            | errors(400, *SESSION_ERRORS),
            description="The phone's address book (synced at each login) and everyone who wrote.",
            parameters=[
                SESSION_ID,
                filter_param("search", "Matches name, number, tag or notes", STRING),
                filter_param("page", "Page number (from 1)", PAGE),
                filter_param("limit", "Contacts per page (default 50; above 200 counts as 200)", LIMIT),
            ],
        ),
    )
    route(
        f"{session_path}/contacts/{{phone}}",
        "get",
        op(
            "Show a contact",
            "Contacts",
            "getContact",
            ok("The contact", success({"contact": ref("Contact")}, ("contact",))) | errors(400, *SESSION_ERRORS),
            parameters=[SESSION_ID, phone],
        ),
    )
    saved = success({"contact": ref("Contact")}, ("contact",))
    route(
        f"{session_path}/contacts/{{phone}}",
        "put",
        op(
            "Save a contact's name, tags and notes",
            "Contacts",
            "saveContact",
            ok("Saved", saved) | ok("Saved, new", saved, 201) | errors(*WITH_BODY, *SESSION_ERRORS),
            description="An address-book sync never overwrites the name saved here.",
            parameters=[SESSION_ID, phone],
            request_body=body(
                obj(
                    {
                        "name": nullable({"type": "string", "maxLength": 256}),
                        "tags": array(
                            {"type": "string", "minLength": 1, "maxLength": 50, "pattern": NOT_BLANK}, maxItems=20
                        ),
                        "notes": {"type": "string", "maxLength": 5000},
                    },
                    additionalProperties=False,
                )
            ),
        ),
    )

    # Groups
    group_path = f"{session_path}/groups/{{groupId}}"
    participants = obj({"participants": array(PHONE, minItems=1, maxItems=256)}, ["participants"])
    route(
        f"{session_path}/groups",
        "get",
        op(
            "List groups",
            "Groups",
            "listGroups",
            ok(
                "The groups the phone is in",
                success({"count": INTEGER, "groups": array(ref("Group"))}, ("count", "groups")),
            )
            | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID],
        ),
    )
    route(
        f"{session_path}/groups",
        "post",
        op(
            "Create a group",
            "Groups",
            "createGroup",
            ok("Created", success({"group": ref("Group")}, ("group",)), 201)
            | errors(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID],
            request_body=body(
                obj(
                    {"name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_BLANK}}
                    | participants["properties"],
                    ["name", "participants"],
                )
            ),
        ),
    )
    route(
        group_path,
        "get",
        op(
            "Show a group",
            "Groups",
            "getGroup",
            ok("Name, topic, owner, creation time and participants", success({"group": ref("Group")}, ("group",)))
            | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, GROUP_ID_PARAM],
        ),
    )
    route(
        f"{group_path}/participants",
        "get",
        op(
            "A group's participants",
            "Groups",
            "listGroupParticipants",
            ok(
                "Who is in the group, with their role",
                success(
                    {"count": INTEGER, "participants": GROUP["properties"]["participants"]}, ("count", "participants")
                ),
            )
            | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, GROUP_ID_PARAM],
        ),
    )
    route(
        f"{group_path}/participants/{{action}}",
        "post",
        op(
            "Add, remove, promote or demote participants",
            "Groups",
            "changeGroupParticipants",
            ok(
                "Each participant's outcome",
                success(
                    {"results": array(obj({"phone": STRING, "ok": BOOLEAN, "reason": STRING}, ["phone", "ok"]))},
                    ("results",),
                ),
            )
            | errors(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[
                SESSION_ID,
                GROUP_ID_PARAM,
                path_param("action", "What to do", {"type": "string", "enum": GROUP_ACTIONS}),
            ],
            request_body=body(participants),
        ),
    )
    link = success(
        {"inviteLink": {"type": "string", "examples": ["https://chat.whatsapp.com/AbCdEf123"]}}, ("inviteLink",)
    )
    route(
        f"{group_path}/invite-link",
        "get",
        op(
            "A group's invite link",
            "Groups",
            "getGroupInviteLink",
            ok("The invite link (admins only)", link) | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, GROUP_ID_PARAM],
        ),
    )
    route(
        f"{group_path}/invite-link/revoke",
        "post",
        op(
            "Replace a group's invite link",
            "Groups",
            "revokeGroupInviteLink",
            ok("The new invite link; the old one stops working", link) | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, GROUP_ID_PARAM],
        ),
    )
    route(
        f"{group_path}/leave",
        "post",
        op(
            "Leave a group",
            "Groups",
            "leaveGroup",
            ok("Left", success({"groupId": STRING, "message": STRING}, ("groupId",)))
            | errors(400, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID, GROUP_ID_PARAM],
        ),
    )

    # Presence
    route(
        f"{session_path}/presence",
        "post",
        op(
            "Show typing, recording or online",
            "Contacts",
            "sendPresence",
            ok(
                "Shown",
                success(
                    {"sessionId": STRING, "state": {"type": "string", "enum": PRESENCE_STATES}, "to": STRING},
                    ("sessionId", "state"),
                ),
            )
            | errors(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
            description="`typing`, `recording` or `paused` in the chat `to` (a number or a group id); "
            "`available` or `unavailable` to everyone (without `to`).",
            parameters=[SESSION_ID],
            request_body=body(
                {
                    "anyOf": [
                        obj(
                            {
                                "state": {"type": "string", "enum": PRESENCE_CHAT_STATES},
                                "to": {"anyOf": [PHONE, GROUP_ID]},
                            },
                            ["state", "to"],
                        ),
                        obj(
                            {"state": {"type": "string", "enum": ["available", "unavailable"]}, "to": {"type": "null"}},
                            ["state"],
                        ),
                    ]
                }
            ),
        ),
    )
    route(
        f"{session_path}/presence/subscribe",
        "post",
        op(
            "Follow a contact's online/offline",
            "Contacts",
            "subscribePresence",
            ok(
                "Following; `presence_update` events follow",
                success({"sessionId": STRING, "phone": STRING}, ("phone",)),
            )
            | errors(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
            parameters=[SESSION_ID],
            request_body=body(obj({"phone": PHONE}, ["phone"])),
        ),
    )


def _message_paths(route: Route) -> None:
    session_path = "/api/sessions/{sessionId}"
    explicit = {"to": SEND_BODY["properties"]["to"], "sendAt": SEND_AT, **COMMON_PROPERTIES}
    captioned = nullable({"type": "string", "maxLength": 1024})
    media_types = {
        "image": {"caption": captioned, "viewOnce": FLAG},
        "video": {"caption": captioned, "viewOnce": FLAG},
        "document": {
            "caption": captioned,
            "viewOnce": NOT_TRUE,
            "filename": nullable({"type": "string", "pattern": NOT_BLANK}),
        },
        "sticker": {"caption": NO_TEXT, "viewOnce": NOT_TRUE},
    }
    route(
        f"{session_path}/send/media",
        "post",
        op(
            "Send media (explicit form)",
            "Messages",
            "sendMedia",
            SEND_RESPONSES,
            description="Wamux's form of an image, video, document or sticker send; answers as `POST …/send`.",
            parameters=[SESSION_ID, IDEMPOTENCY_KEY],
            request_body=body(
                {
                    "type": "object",
                    "required": ["to", "mediaUrl", "mediaType"],
                    "properties": explicit | {"mediaUrl": MEDIA_SOURCE},
                    "anyOf": [
                        {"properties": {"mediaType": {"const": kind}} | properties}
                        for kind, properties in media_types.items()
                    ],
                }
            ),
        ),
    )
    route(
        f"{session_path}/send/audio",
        "post",
        op(
            "Send audio or a voice note (explicit form)",
            "Messages",
            "sendAudio",
            SEND_RESPONSES,
            description="Wamux's form: `ptt: true` sends a voice note (Ogg Opus); answers as `POST …/send`.",
            parameters=[SESSION_ID, IDEMPOTENCY_KEY],
            request_body=body(
                obj(explicit | {"audioUrl": MEDIA_SOURCE, "ptt": FLAG, "viewOnce": FLAG}, ["to", "audioUrl"])
            ),
        ),
    )
    route(
        "/api/messages",
        "get",
        op(
            "The message log",
            "Messages",
            "listMessages",
            ok(
                "One page, newest first",
                success(
                    {
                        "messages": array(ref("Message")),
                        "total": INTEGER,
                        "page": nullable(INTEGER),
                        "limit": INTEGER,
                        "nextCursor": nullable({"type": "string", "description": "Pass as `cursor` for the next page"}),
                    },
                    ("messages", "total", "page", "limit", "nextCursor"),
                ),
            )
            | errors(400, *AUTHED, 403),
            parameters=[
                filter_param("sessionId", "Only this session's", STRING),
                filter_param("chat", "Only the chat with this number", PHONE),
                filter_param("direction", "inbound or outbound", {"type": "string", "enum": ["inbound", "outbound"]}),
                filter_param("status", "Only messages in this status", {"type": "string", "enum": MESSAGE_STATUSES}),
                filter_param("type", "Only this kind", {"type": "string", "enum": list(KINDS)}),
                filter_param(
                    "since", "From this time (inclusive, ISO 8601)", {"type": "string", "format": "date-time"}
                ),
                filter_param("until", "Before this time (ISO 8601)", {"type": "string", "format": "date-time"}),
                filter_param("cursor", "The `nextCursor` of the page before", STRING),
                filter_param("page", "Page number, when not paging by cursor", PAGE),
                filter_param("limit", "Messages per page (default 50; above 200 counts as 200)", LIMIT),
            ],
        ),
    )
    message_id = path_param("messageId", "The message's id")
    route(
        "/api/messages/{messageId}",
        "get",
        op(
            "Show a message",
            "Messages",
            "getMessage",
            ok("The message with its delivery timestamps", ref("Message")) | errors(*AUTHED, 403, 404),
            parameters=[message_id],
        ),
    )
    route(
        "/api/messages/{messageId}/media",
        "get",
        op(
            "A message's file",
            "Messages",
            "getMessageMedia",
            {
                "200": {
                    "description": "The photo, video, audio or document, as an attachment unless a common image, "
                    "video or audio format",
                    "headers": REQUEST_ID,
                    "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}},
                }
            }
            | errors(*AUTHED, 403, 404),
            parameters=[message_id],
        ),
    )
    route(
        "/api/messages/stats",
        "get",
        op(
            "Message statistics",
            "Messages",
            "getMessageStats",
            ok("Totals and the last 7 days (UTC), zeros for quiet days", ref("Stats")) | errors(*AUTHED),
        ),
    )
    route(
        "/api/messages/failed",
        "get",
        op(
            "Recently failed messages",
            "Messages",
            "listFailedMessages",
            ok(
                "Newest first",
                success({"count": INTEGER, "messages": array(ref("FailedMessage"))}, ("count", "messages")),
            )
            | errors(400, *AUTHED),
            parameters=[filter_param("limit", "How many (default 5; above 100 counts as 100)", LIMIT)],
        ),
    )
    scheduled = {"allOf": [ref("Message"), obj({"sendAt": TIMESTAMP_OR_NULL}, ["sendAt"])]}
    route(
        "/api/messages/scheduled",
        "get",
        op(
            "Scheduled messages",
            "Messages",
            "listScheduledMessages",
            ok("Soonest first", success({"count": INTEGER, "messages": array(scheduled)}, ("count", "messages")))
            | errors(400, *AUTHED, 403, 404),
            parameters=[
                filter_param("sessionId", "Only this session's", STRING),
                filter_param("limit", "How many (default 100; above 500 counts as 500)", LIMIT),
            ],
        ),
    )
    route(
        "/api/messages/{messageId}",
        "patch",
        op(
            "Move a scheduled message",
            "Messages",
            "rescheduleMessage",
            ok("Moved", {"allOf": [success({}), scheduled]}) | errors(*WITH_BODY, *AUTHED, 403, 404, 405, 409),
            description="Only while it is still scheduled (`409 NOT_SCHEDULED` once it went). A message id is a "
            "UUID: PATCH on anything else under /api/messages/ is 405.",
            parameters=[path_param("messageId", "The message's id", {"type": "string", "format": "uuid"})],
            request_body=body(obj({"sendAt": SEND_TIME}, ["sendAt"])),
        ),
    )
    route(
        "/api/messages/{messageId}/cancel",
        "post",
        op(
            "Cancel a scheduled message",
            "Messages",
            "cancelMessage",
            ok("Cancelled: it is never sent and its quota slot comes back", {"allOf": [success({}), scheduled]})
            | errors(*AUTHED, 403, 404, 409),
            parameters=[message_id],
        ),
    )


def _legacy_paths(route: Route) -> None:
    route(
        "/api/whatsapp/init",
        "post",
        op(
            "Create (or reconnect) the default session",
            "Legacy",
            "legacyInit",
            ok(
                "Initializing",
                success({"sessionId": STRING, "status": SESSION_STATUS, "message": STRING}, ("sessionId", "status")),
            )
            | errors(401, 403, 429, *ENGINE),
            description="Without credentials only trusted networks (`TRUSTED_NETWORKS`) may call the legacy "
            "API; they act as the legacy owner account.",
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/qr",
        "get",
        op(
            "The default session's QR code",
            "Legacy",
            "legacyQr",
            ok(
                "The QR code, or null",
                obj(
                    {
                        "qrCode": nullable({"type": "string", "pattern": "^data:image/png;base64,"}),
                        "status": SESSION_STATUS,
                        "expiresAt": TIMESTAMP_OR_NULL,
                        "sessionId": STRING,
                        "pairUrl": {
                            **nullable({"type": "string", "format": "uri"}),
                            "description": "Simulator only: the URL the QR code encodes (POST to it to pair)",
                        },
                    },
                    ["qrCode", "status", "expiresAt", "sessionId"],
                ),
            )
            | errors(401, 403, 404, 429),
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/status",
        "get",
        op(
            "The default session's status",
            "Legacy",
            "legacyStatus",
            ok(
                "The status",
                {"allOf": [success({"connected": BOOLEAN}, ("connected",)), ref("SessionState")]},
            )
            | errors(401, 403, 404, 429),
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/send",
        "post",
        op(
            "Send a text from the default session",
            "Legacy",
            "legacySend",
            SEND_RESPONSES,
            parameters=[IDEMPOTENCY_KEY],
            request_body=body(obj({"number": PHONE, "message": TEXT}, ["number", "message"])),
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/bulk-send",
        "post",
        op(
            "Send one text to many contacts",
            "Legacy",
            "legacyBulkSend",
            ok("Finished: a result per contact", ref("BulkReport"))
            | ok("Accepted: a long batch runs on; follow `progressUrl`", ref("BulkReport"), 202)
            | errors(*WITH_BODY, 401, 403, 404, 402, 429, *ENGINE),
            description="Growth plan and above. Invalid and repeated numbers are reported per contact. "
            "Batches expected to take longer than `BULK_WAIT_SECONDS` answer 202 at once.",
            request_body=body(
                obj(
                    {
                        "contacts": array(
                            {"examples": ["919876543210", {"number": "919876543211"}]},
                            minItems=1,
                            maxItems=10000,
                            description="Phone numbers, or objects with a `number`; an invalid or repeated one "
                            "is reported in its result, not refused",
                        ),
                        "message": TEXT,
                        "sendAt": SEND_AT,
                        "delay": nullable(
                            {
                                "type": "number",
                                "minimum": 0,
                                "maximum": 86_400_000,
                                "description": "Milliseconds between sends (default 2000)",
                            }
                        ),
                    },
                    ["contacts", "message"],
                )
            ),
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/bulk-send/{batchId}",
        "get",
        op(
            "A batch's progress",
            "Legacy",
            "legacyBulkStatus",
            ok("Live counts and per-contact results", ref("BulkReport")) | errors(401, 403, 404, 429),
            parameters=[path_param("batchId", "The batch's id")],
            security=LEGACY,
        ),
    )
    route(
        "/api/whatsapp/bulk-send/{batchId}/cancel",
        "post",
        op(
            "Cancel a scheduled batch",
            "Legacy",
            "legacyBulkCancel",
            ok("Cancelled before it started: nothing is sent, its quota comes back", ref("BulkReport"))
            | errors(401, 403, 404, 409, 429),
            description="Only before it starts (`409 NOT_SCHEDULED` afterwards).",
            parameters=[path_param("batchId", "The batch's id")],
            security=LEGACY,
        ),
    )


def _key_paths(route: Route) -> None:
    route(
        "/api/keys",
        "post",
        op(
            "Create an API key",
            "API keys",
            "createApiKey",
            ok(
                "Created: the key is in this answer only",
                {
                    "allOf": [
                        success(
                            {"message": STRING, "key": {"type": "string", "pattern": "^wag_(live|test)_[0-9a-f]{64}$"}},
                            ("key",),
                        ),
                        ref("ApiKey"),
                    ]
                },
                201,
            )
            | errors(*WITH_BODY, *AUTHED, 403),
            description="Needs a login token or an unrestricted live key.",
            request_body=body(
                obj(
                    {
                        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_BLANK},
                        "mode": nullable({"type": "string", "enum": ["live", "test"]}),
                        "sessionIds": nullable(array(STRING, description="Limit the key to these sessions")),
                        "expiresAt": {
                            "anyOf": [{"type": "string", "format": "date-time"}, {"const": ""}, {"type": "null"}],
                            "description": 'When it stops working (a time in the future); null or "": never',
                        },
                    },
                    ["name"],
                )
            ),
        ),
    )
    route(
        "/api/keys",
        "get",
        op(
            "List API keys",
            "API keys",
            "listApiKeys",
            ok(
                "Newest first (never the keys themselves)",
                success({"keys": array(ref("ApiKey")), "total": INTEGER}, ("keys", "total")),
            )
            | errors(*AUTHED, 403),
        ),
    )
    route(
        "/api/keys/{keyId}",
        "delete",
        op(
            "Revoke an API key",
            "API keys",
            "revokeApiKey",
            ok("Revoked: it stops working at once", success({"message": STRING, "key": ref("ApiKey")}, ("key",)))
            | errors(*AUTHED, 403, 404),
            parameters=[path_param("keyId", "The key's id")],
        ),
    )


def _webhook_paths(route: Route) -> None:
    events = array({"type": "string", "enum": list(EVENTS)}, minItems=1)
    webhook_id = path_param("webhookId", "The endpoint's id")
    with_secret = success({"message": STRING, "secret": STRING}, ("secret",))
    route(
        "/api/webhooks",
        "post",
        op(
            "Add a webhook endpoint",
            "Webhooks",
            "createWebhook",
            ok("Created: its signing secret is in this answer only", {"allOf": [with_secret, ref("Webhook")]}, 201)
            | errors(*WITH_BODY, *AUTHED, 403, 404),
            description="Starter plan and above. The URL must reach a public address (`400 URL_NOT_ALLOWED` "
            "otherwise, unless the operator allows private ones).",
            request_body=body(
                obj(
                    {
                        "url": URL,
                        "events": nullable(events | {"description": "The events to send (null or left out: all)"}),
                        "sessionId": nullable({"type": "string", "description": "Only this session's events"}),
                    },
                    ["url"],
                )
            ),
        ),
    )
    route(
        "/api/webhooks",
        "get",
        op(
            "List webhook endpoints",
            "Webhooks",
            "listWebhooks",
            ok(
                "Newest first (never their secrets)",
                success(
                    {"webhooks": array(ref("Webhook")), "total": INTEGER, "events": array(STRING)},
                    ("webhooks", "total", "events"),
                ),
            )
            | errors(*AUTHED),
        ),
    )
    route(
        "/api/webhooks/{webhookId}",
        "get",
        op(
            "Show a webhook endpoint",
            "Webhooks",
            "getWebhook",
            ok("The endpoint", success({"webhook": ref("Webhook")}, ("webhook",))) | errors(*AUTHED, 403, 404),
            parameters=[webhook_id],
        ),
    )
    route(
        "/api/webhooks/{webhookId}",
        "patch",
        op(
            "Change a webhook endpoint",
            "Webhooks",
            "updateWebhook",
            ok("Changed", success({"webhook": ref("Webhook")}, ("webhook",))) | errors(*WITH_BODY, *AUTHED, 403, 404),
            description="Enabling an endpoint again resets its failure count. Its session cannot change "
            "(`sessionId`, if sent, must be the one it has).",
            parameters=[webhook_id],
            request_body=body(
                obj(
                    {
                        "url": URL,
                        "events": events,
                        "enabled": BOOLEAN,
                    }
                )
            ),
        ),
    )
    route(
        "/api/webhooks/{webhookId}",
        "delete",
        op(
            "Delete a webhook endpoint",
            "Webhooks",
            "deleteWebhook",
            ok("Deleted, with its delivery log", success({"message": STRING})) | errors(*AUTHED, 403, 404),
            parameters=[webhook_id],
        ),
    )
    route(
        "/api/webhooks/{webhookId}/rotate-secret",
        "post",
        op(
            "Rotate a webhook's secret",
            "Webhooks",
            "rotateWebhookSecret",
            ok(
                "The new secret, shown only here; the old one stops signing at once",
                success({"message": STRING, "secret": STRING, "webhook": ref("Webhook")}, ("secret", "webhook")),
            )
            | errors(*AUTHED, 403, 404),
            parameters=[webhook_id],
        ),
    )
    route(
        "/api/webhooks/{webhookId}/deliveries",
        "get",
        op(
            "A webhook's delivery log",
            "Webhooks",
            "listWebhookDeliveries",
            ok(
                "Newest first, each with its attempts",
                success({"deliveries": array(ref("WebhookDelivery")), "total": INTEGER}, ("deliveries", "total")),
            )
            | errors(400, *AUTHED, 403, 404),
            parameters=[
                webhook_id,
                filter_param("status", "Only deliveries in this state", {"type": "string", "enum": DELIVERY_STATUSES}),
                filter_param("limit", "How many (default 50; above 200 counts as 200)", LIMIT),
            ],
        ),
    )
    queued = success({"message": STRING, "delivery": ref("WebhookDelivery")}, ("delivery",))
    route(
        "/api/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver",
        "post",
        op(
            "Redeliver",
            "Webhooks",
            "redeliverWebhook",
            ok("Queued: same delivery id and body, the next attempt number", queued, 202)
            | errors(*AUTHED, 403, 404, 409, *ENGINE),
            parameters=[webhook_id, path_param("deliveryId", "The delivery's id")],
        ),
    )
    route(
        "/api/webhooks/{webhookId}/test",
        "post",
        op(
            "Send a test event",
            "Webhooks",
            "testWebhook",
            ok("Queued: a webhook.test event, one attempt", queued, 202) | errors(*AUTHED, 403, 404, 409, *ENGINE),
            parameters=[webhook_id],
        ),
    )


def _simulator_paths(route: Route) -> None:
    scope = query("sessionId", "One session's faults (its owner's); without it, every session's (admins)", STRING)
    faults = {"type": "object", "properties": {name: BOOLEAN for name in FAULTS}, "additionalProperties": False}
    simulator_errors = (*AUTHED, 403, 404)
    route(
        "/api/simulator/faults",
        "get",
        op(
            "The simulator's faults",
            "Simulator",
            "getSimulatorFaults",
            ok("The faults switched on", ref("FaultState")) | errors(*simulator_errors),
            parameters=[scope],
        ),
    )
    route(
        "/api/simulator/faults",
        "put",
        op(
            "Switch simulator faults",
            "Simulator",
            "setSimulatorFaults",
            ok("The faults now on", ref("FaultState")) | errors(*WITH_BODY, *simulator_errors),
            parameters=[scope],
            request_body=body(faults | {"examples": [{"disconnect": True}]}),
        ),
    )
    route(
        "/api/simulator/faults",
        "delete",
        op(
            "Switch every simulator fault off",
            "Simulator",
            "clearSimulatorFaults",
            ok("None on", ref("FaultState")) | errors(*simulator_errors),
            parameters=[scope],
        ),
    )
    session_path = "/api/simulator/sessions/{sessionId}"
    accepted = success({"sessionId": STRING, "message": STRING}, ("sessionId",))
    inbound = {
        "type": "object",
        "required": ["from"],
        "properties": {"from": PHONE},
        "anyOf": [
            obj(
                {"vote": obj({"messageId": STRING, "options": array(STRING)}, ["messageId", "options"])},
                ["vote"],
                title="a vote on one of the session's polls",
            ),
            {"properties": {"vote": ABSENT} | COMMON_PROPERTIES, "allOf": [MESSAGE_KINDS], "title": "a message"},
        ],
    }
    route(
        f"{session_path}/inbound",
        "post",
        op(
            "A contact writes to the session",
            "Simulator",
            "simulateInbound",
            ok("On its way", accepted, 202) | errors(*WITH_BODY, *simulator_errors, 415, *ENGINE),
            description="`from` plus any payload a send takes, or a vote on one of the session's polls.",
            parameters=[SESSION_ID],
            request_body=body(inbound),
        ),
    )
    route(
        f"{session_path}/address-book",
        "post",
        op(
            "The simulated phone's address book syncs",
            "Simulator",
            "simulateAddressBook",
            ok("Syncing", success({"sessionId": STRING, "count": INTEGER}, ("count",)), 202)
            | errors(*WITH_BODY, *simulator_errors, *ENGINE),
            parameters=[SESSION_ID],
            request_body=body(
                obj(
                    {
                        "contacts": array(
                            obj({"phone": PHONE, "name": {"description": "Shown as text"}}, ["phone"]), maxItems=5000
                        )
                    },
                    ["contacts"],
                )
            ),
        ),
    )
    route(
        f"{session_path}/presence",
        "post",
        op(
            "A contact's presence changes",
            "Simulator",
            "simulatePresence",
            ok("On its way", success({"sessionId": STRING}), 202) | errors(*WITH_BODY, *simulator_errors, *ENGINE),
            parameters=[SESSION_ID],
            request_body=body(
                obj(
                    {
                        "from": PHONE,
                        "state": {"type": "string", "enum": PRESENCE_SEEN},
                        "chat": nullable(GROUP_ID | {"description": "The group the contact types in"}),
                    },
                    ["from", "state"],
                )
            ),
        ),
    )
    paired = success(
        {"sessionId": STRING, "status": SESSION_STATUS, "phone": STRING_OR_NULL, "message": STRING},
        ("sessionId", "status"),
    )
    pairing = obj({"phone": nullable(PAIRING_PHONE)})
    token = path_param("token", "The token in the session's current QR code")
    route(
        "/sim/pair/{sessionId}/{token}",
        "get",
        op(
            "The simulated phone's pairing page",
            "Simulator",
            "simulatorPairPage",
            {
                "200": {
                    "description": "What a phone camera opens: a page with a Pair button",
                    "headers": REQUEST_ID,
                    "content": {"text/html": {"schema": STRING}},
                }
            }
            | errors(404),
            parameters=[SESSION_ID, token],
            security=PUBLIC,
        ),
    )
    route(
        "/sim/pair/{sessionId}/{token}",
        "post",
        op(
            "The simulated phone scans the QR code",
            "Simulator",
            "simulatorPair",
            ok("Paired", paired) | ok("Scan accepted; pairing", paired, 202) | errors(400, 404, 409, 413, *ENGINE),
            description="Only the session's current QR code pairs (`409 QR_SUPERSEDED`, `409 QR_EXPIRED`).",
            parameters=[SESSION_ID, token],
            request_body=body(pairing, required=False),
            security=PUBLIC,
        ),
    )
    route(
        "/sim/pair-code/{sessionId}",
        "post",
        op(
            "The simulated phone enters a pairing code",
            "Simulator",
            "simulatorPairCode",
            ok("Paired", paired) | ok("Code accepted; pairing", paired, 202) | errors(*WITH_BODY, 404, 409, 503, 504),
            parameters=[SESSION_ID],
            request_body=body(obj({"code": {"type": "string", "pattern": NOT_BLANK}}, ["code"])),
            security=PUBLIC,
        ),
    )

    # Service
    route(
        "/healthz",
        "get",
        op(
            "Health",
            "Service",
            "health",
            ok("Database, queue and engine hosts are alive", ref("Health"))
            | {"503": json_response("One of them is not (see `checks`)", ref("Health"))},
            security=PUBLIC,
        ),
    )
    route(
        "/api/openapi.json",
        "get",
        op(
            "This document",
            "Service",
            "openapi",
            ok("The OpenAPI 3.1 document of this API", {"type": "object", "required": ["openapi", "paths"]}),
            security=PUBLIC,
        ),
    )


def _build() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wagate API",
            "version": "1.0.0",
            "summary": "A self-hostable WhatsApp messaging gateway, compatible with the WAMessenger API.",
            "description": "Send and receive WhatsApp messages over HTTP. Errors are always "
            '`{"error", "message", "code"}` with the documented status; every response carries '
            "`X-Request-ID`; rate-limited routes send `X-RateLimit-Limit/Remaining/Reset` and `Retry-After` "
            "on 429. Authenticate with `Authorization: Bearer <JWT or API key>` or `X-Api-Key: <API key>`.",
            "license": {"name": "Proprietary"},
        },
        "tags": [
            {"name": name, "description": description}
            for name, description in (
                ("Accounts", "Register, log in, your plan and quota"),
                ("Sessions", "WhatsApp sessions: create, pair (QR or code), status, live events"),
                ("Messages", "Send any kind of message; the message log, statistics and media"),
                ("Contacts", "A session's contacts and number checks"),
                ("Groups", "The groups a session's phone is in"),
                ("Legacy", "WAMessenger's single-session API (/api/whatsapp/*) and bulk sends"),
                ("API keys", "Keys for scripts, live or test mode"),
                ("Webhooks", "Signed webhook endpoints and their delivery log"),
                ("Simulator", "The simulator engine's controls (WA_ENGINE=simulator only)"),
                ("Service", "Health and this document"),
            )
        ],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{status}": error_response(status) for status in ERROR_TITLES},
            "headers": HEADERS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT or API key",
                    "description": "The JWT from /api/register or /api/login, or an API key (`wag_live_…`, "
                    "`wag_test_…`)",
                },
                "apiKeyHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "An API key (`wag_live_…` or `wag_test_…`)",
                },
            },
        },
    }


DOCUMENT = _build()


def openapi_document(server_url: str | None = None) -> Schema:
    """The document, with `server_url` (this server, as the client reached it) as its server."""
    document = copy.deepcopy(DOCUMENT)
    if server_url:
        document["servers"] = [{"url": server_url.rstrip("/")}]
    return document
