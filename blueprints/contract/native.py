"""The native dialect: WAMessenger's API as wagate serves it, its error codes and its document.

`NATIVE_ERRORS` is the table from a request that does not fit its schema to the code the
README documents for it: the first rule that matches the failure names its code (and, where
the README's answer names another field or says it otherwise, the field and message).
Whatever no rule names is `INVALID_FIELD`, with the field.
"""

from __future__ import annotations

from blueprints.contract.wiring import Contract, ErrorTable, Header
from blueprints.contract.wiring import Rule as R
from blueprints.schemas.auth import Credentials, Registration
from blueprints.schemas.chats import HistoryRequest
from blueprints.schemas.contacts import ContactChange, PresenceShow
from blueprints.schemas.events import EventsQuery
from blueprints.schemas.fields import Error, GroupId, Phone
from blueprints.schemas.messages import SendMedia
from blueprints.schemas.sessions import PaceChange, PairCodeRequest
from blueprints.schemas.simulator import ContactPresence, FaultSwitches, PairCodeEntry, PairScan
from blueprints.schemas.webhooks import WebhookChange, WebhookCreate
from engines.simulator import FAULTS

# The kinds of message whose `caption` (or `message`, taken as one) must stay empty.
UNCAPTIONED = ("sticker message", "audio message", "voice message")
CAPTIONS = ("message", "caption", "*.caption")
# Failures of a value given (as opposed to a field left out, or one not known).
TYPED = (
    "string_type",
    "string_pattern_mismatch",
    "bool_type",
    "int_type",
    "float_type",
    "list_type",
    "too_long",
    "greater_than_equal",
    "less_than_equal",
    "finite_number",
)
NUMBERS = ("to", "number", "from", "phone", "mentions", "phones", "participants", "contact.phoneNumber", "chat")

NATIVE_ERRORS = ErrorTable(
    (
        # Accounts
        R("INVALID_EMAIL", ("email",), schemas=(Registration,), message="A valid email address is required"),
        R("INVALID_PASSWORD", ("password",), ("string_too_long",), schemas=(Registration,)),
        R("WEAK_PASSWORD", ("password",), schemas=(Registration,), message="Password must be at least 8 characters"),
        R("INVALID_USERNAME", schemas=(Registration,), message="Username must be a string of at most 64 characters"),
        R("MISSING_CREDENTIALS", schemas=(Credentials,), message="'email' and 'password' are required strings"),
        # Sessions and pairing
        R("EMPTY_UPDATE", types=("empty_update",)),
        R("INVALID_PHONE", ("phone",), schemas=(PairCodeRequest, PairScan)),
        R(
            "INVALID_CODE",
            ("code",),
            schemas=(PairCodeEntry,),
            message="'code' is required: the 8-character pairing code",
        ),
        R("INVALID_EVENT_ID", ("Last-Event-ID",), message="Last-Event-ID must be an id this stream sent"),
        R(
            "INVALID_FIELD",
            types=("invalid_time",),
            message="'{field}' must be an ISO 8601 time like 2026-11-23T10:00:00Z",
        ),
        # Pace (the dashboard's form says these beside its fields, with the field's label)
        R(
            "INVALID_FIELD",
            ("minGapSeconds", "jitterSeconds"),
            types=TYPED,
            schemas=(PaceChange,),
            message="'{field}' must be a number of seconds from 0 to 3600",
        ),
        R(
            "INVALID_FIELD",
            ("perMinute", "perDay"),
            types=TYPED,
            schemas=(PaceChange,),
            message="'{field}' must be a whole number from 1 to 100000",
        ),
        R(
            "INVALID_FIELD",
            ("warmup",),
            types=TYPED,
            schemas=(PaceChange,),
            message="'warmup' must be a list of up to 60 daily ceilings ([] turns warm-up off)",
        ),
        R(
            "INVALID_FIELD",
            ("quietStart", "quietEnd"),
            types=TYPED,
            schemas=(PaceChange,),
            message="'{field}' must be a time like \"21:00\", or null",
        ),
        R("INVALID_FIELD", ("typing",), types=TYPED, schemas=(PaceChange,), message="'typing' must be true or false"),
        # Sending
        R("INVALID_IDEMPOTENCY_KEY", ("Idempotency-Key",), message="Idempotency-Key is longer than 255 characters"),
        R("AMBIGUOUS_MESSAGE", types=("ambiguous_message",)),
        R(
            "INVALID_FIELD",
            CAPTIONS,
            ("string_too_long",),
            within=UNCAPTIONED,
            field="caption",
            message="A {branch} has no caption",
        ),
        R("EMPTY_MESSAGE", CAPTIONS, ("string_type",), within=UNCAPTIONED, field="caption"),
        R(
            "MESSAGE_TOO_LONG",
            ("caption", "*.caption"),
            ("string_too_long",),
            field="caption",
            message="'caption' is too long: at most {max_length} characters",
        ),
        R("EMPTY_MESSAGE", ("caption", "*.caption"), field="caption"),
        R(
            "MESSAGE_TOO_LONG",
            ("message", "text"),
            ("string_too_long",),
            message="'{field}' is too long: at most {max_length} characters",
        ),
        R(
            "EMPTY_MESSAGE",
            ("message", "text"),
            ("string_type",),
            message="'{field}' must be text (a JSON string): the text to send",
        ),
        R("EMPTY_MESSAGE", ("message", "text"), message="'{field}' is required: the text to send"),
        R("EMPTY_MESSAGE", types=("message_required",), field="message"),
        R(
            "INVALID_SEND_AT",
            ("sendAt",),
            message="'sendAt' must be an ISO 8601 time with its offset, like 2026-12-01T09:30:00+05:30",
        ),
        R(
            "INVALID_FIELD",
            ("viewOnce", "*.viewOnce"),
            ("literal_error",),
            field="viewOnce",
            message="Only images, videos, audio and voice notes can be sent view-once",
        ),
        R("INVALID_FIELD", ("viewOnce", "*.viewOnce"), field="viewOnce"),
        R("INVALID_FIELD", ("ptt", "*.ptt"), field="ptt"),
        R("MISSING_FIELD", ("mediaUrl", "audioUrl"), ("missing", "string_type")),
        R(
            "INVALID_FIELD",
            types=("union_tag_invalid", "union_tag_not_found"),
            schemas=(SendMedia,),
            field="mediaType",
            message="'mediaType' must be one of image, video, document, sticker",
        ),
        R("MEDIA_REQUIRED", types=("media_required",)),
        R("INVALID_URL", types=("invalid_url",)),
        R("INVALID_MEDIA", types=("invalid_media",)),
        R("INVALID_LOCATION", ("location.latitude", "location.lat", "location.longitude", "location.lng")),
        R("INVALID_LOCATION", types=("location_required",)),
        R("INVALID_POLL", ("poll.options", "poll.multipleAnswers")),
        R("INVALID_POLL", types=("poll_repeats",)),
        R("INVALID_FIELD", types=("poll_question_required",), field="question"),
        # Numbers and contacts
        R(
            "INVALID_FIELD",
            ("mentions",),
            ("list_type", "too_long"),
            message="'mentions' must be a list of up to 50 phone numbers",
        ),
        R("TOO_MANY_NUMBERS", ("phones",), ("too_long",), message="'phones' has more than 100 numbers"),
        R(
            "INVALID_FIELD",
            ("phones",),
            ("list_type", "too_short", "missing"),
            message="'phones' must be a non-empty list of phone numbers",
        ),
        R(
            "INVALID_PARTICIPANTS",
            ("participants",),
            ("list_type", "too_short", "too_long", "missing"),
            message="'participants' must be a list of 1 to 256 phone numbers",
        ),
        R(
            "INVALID_FIELD",
            ("to",),
            ("none_required",),
            message="'{field}': this state is shown to everyone, leave out 'to'",
        ),
        R(
            "INVALID_STATE",
            types=("union_tag_invalid", "union_tag_not_found"),
            schemas=(PresenceShow,),
            field="state",
            message="'state' must be one of typing, recording, paused, available, unavailable",
        ),
        R("INVALID_STATE", ("state",)),
        R(
            "INVALID_FIELD",
            types=("union_tag_invalid", "union_tag_not_found"),
            schemas=(HistoryRequest,),
            field="count",
            message="Give either 'count' (1 to 1000) or 'since' (an ISO 8601 time), not both",
        ),
        R(
            "INVALID_GROUP_ID",
            ("chat",),
            schemas=(ContactPresence,),
            message="'chat' is the group the contact types in (like 1203...@g.us)",
        ),
        R("INVALID_GROUP_ID", ("groupId",)),
        R("INVALID_NUMBER", ("contacts.phone",)),
        R("INVALID_NUMBER", NUMBERS),
        R(
            "VALIDATION_ERROR",
            types=("extra_forbidden",),
            schemas=(ContactChange,),
            message="Unknown field '{field}'; a contact has name, tags, notes",
        ),
        # Legacy and bulk
        R("INVALID_CONTACTS", ("contacts", "contacts.*")),
        R("INVALID_DELAY", ("delay",), message="'delay' must be a number of milliseconds, at most 86400000 (a day)"),
        # Groups
        R("INVALID_ACTION", ("action",), message="The action must be one of add, remove, promote, demote"),
        # Webhooks
        R(
            "INVALID_URL",
            ("url",),
            schemas=(WebhookCreate, WebhookChange),
            message="'url' must be an http(s) URL of at most 2048 characters",
        ),
        R("INVALID_EVENTS", ("events",), ("literal_error",)),
        # The event log
        R(
            "INVALID_CURSOR",
            ("after",),
            schemas=(EventsQuery,),
            message="'after' must be a cursor wagate gave (an event's id, or the `next` of a page)",
        ),
        R("INVALID_TYPES", ("types",), schemas=(EventsQuery,)),
        # The simulator
        R(
            "UNKNOWN_FAULT",
            types=("extra_forbidden",),
            schemas=(FaultSwitches,),
            message="Unknown fault '{field}'. Known faults: " + ", ".join(FAULTS),
        ),
    )
)

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

BEARER = [{"bearerAuth": []}, {"apiKeyHeader": []}]
# The legacy /api/whatsapp/* routes also answer trusted networks without credentials.
LEGACY = [*BEARER, {}]
PUBLIC: list = []

# What every API route can answer besides its own: a missing or bad credential, and its limit.
AUTHED = (401, 429)
# A JSON request body: malformed (400) or larger than MAX_CONTENT_LENGTH (413).
WITH_BODY = (400, 413)
# Routes that hand work to the engine host: the job queue can be unreachable.
ENGINE = (503,)
SESSION_ERRORS = (*AUTHED, 403, 404)
# Calls that reach WhatsApp through the engine host and wait for its answer.
ENGINE_CALL = (409, 503, 504)

native = Contract(
    name="native",
    info={
        "title": "wagate API",
        "version": "1.0.0",
        "summary": "A self-hostable WhatsApp messaging gateway, compatible with the WAMessenger API.",
        "description": "Send and receive WhatsApp messages over HTTP. Errors are always "
        '`{"error", "message", "code"}` with the documented status; every response carries '
        "`X-Request-ID`; rate-limited routes send `X-RateLimit-Limit/Remaining/Reset` and `Retry-After` "
        "on 429. Authenticate with `Authorization: Bearer <JWT or API key>` or `X-Api-Key: <API key>`.",
        "license": {"name": "Proprietary"},
    },
    tags=[
        ("Accounts", "Register, log in, your plan and quota"),
        ("Sessions", "WhatsApp sessions: create, pair (QR or code), status, live events"),
        ("Messages", "Send any kind of message; the message log, statistics and media"),
        ("Contacts", "A session's contacts and number checks"),
        ("Groups", "The groups a session's phone is in"),
        ("Legacy", "WAMessenger's single-session API (/api/whatsapp/*) and bulk sends"),
        ("API keys", "Keys for scripts, live or test mode"),
        ("Webhooks", "Signed webhook endpoints and their delivery log"),
        ("Events", "Every event your sessions published, after a cursor: catch up after time away"),
        ("Simulator", "The simulator engine's controls (WA_ENGINE=simulator only)"),
        ("Service", "Health and this document"),
    ],
    errors=NATIVE_ERRORS,
    error_schema=Error,
    error_titles=ERROR_TITLES,
    security_schemes={
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT or API key",
            "description": "The JWT from /api/register or /api/login, or an API key (`wag_live_…`, `wag_test_…`)",
        },
        "apiKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "An API key (`wag_live_…` or `wag_test_…`)",
        },
    },
    security=BEARER,
    response_headers={
        "X-RateLimit-Limit": Header("The limit: requests per window, or on a send reply the plan's message quota"),
        "X-RateLimit-Remaining": Header("What is left of it"),
        "X-RateLimit-Reset": Header("When it resets (Unix seconds)"),
        "Retry-After": Header("Seconds to wait before trying again"),
        "X-Request-ID": Header("This request's id (a valid incoming X-Request-ID is echoed)", str),
    },
    every_answer=("X-Request-ID",),
    status_headers={429: ("Retry-After",), 503: ("Retry-After",)},
    errors_everywhere=(503,),
    path_parameters={
        "session_id": ("The session's id", str),
        "message_id": ("The message's id", str),
        "group_id": ("The group's id (…@g.us)", GroupId),
        "phone": ("A phone number with country code", Phone),
        "chat": ("The chat: a contact's phone number with country code, or a group id (…@g.us)", Phone | GroupId),
        "key_id": ("The key's id", str),
        "webhook_id": ("The endpoint's id", str),
        "delivery_id": ("The delivery's id", str),
        "batch_id": ("The batch's id", str),
        "token": ("The token in the session's current QR code", str),
        "action": ("What to do", str),
    },
)
