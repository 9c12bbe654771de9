"""What a delivery looks like on the wire, per endpoint format: its body and its headers.

Every format shares the ladder, the delivery log, redelivery and the endpoint's secret; only
the bytes and the headers differ, so a receiver written for another service keeps its code:

- `wagate`: `{event, deliveryId, eventId, sessionId, timestamp, test, data}`, signed in
  `X-Wagate-Signature`.
- `aulm`: aulm's `inbound_message` and `message_status` bodies and `x-aulm-*` headers, signed
  as aulm signs (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` keyed with the whole secret).
- `selfhosted`: the self-hosted gateway's `{event, sessionId, timestamp, data}` with its event
  names (`message.received`, `message.sent`, ...), signed as `wagate` is.
- `standard`: Standard Webhooks 1.0, `{type, timestamp, data}` under `webhook-id`,
  `webhook-timestamp` and `webhook-signature: v1,<base64>`, signed by the `standardwebhooks`
  library. The endpoint's secret (`whsec_` + 64 hex digits) is a valid Standard Webhooks secret
  as it is: the library's key is those 64 characters read as base64 (48 bytes).

A body is made once, when its delivery is (so every attempt sends the same bytes); the
headers are made at each attempt (a new timestamp and signature, the attempt's number).
A delivery of a logged event carries its cursor (services/events/log.py) in
`X-Wagate-Event-Id` in every format but aulm's (whose receivers get aulm's headers only), and
in `wagate` bodies as `eventId` too: a receiver that missed some pages through
GET /api/events from the last one it has.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook as StandardWebhook

FORMATS = ("wagate", "aulm", "selfhosted", "standard")
DEFAULT_FORMAT = "wagate"
# What the owner reads when picking one (the dashboard's choices).
FORMAT_LABELS = {
    "wagate": "wagate: wagate's own body and X-Wagate-* headers",
    "aulm": "aulm: inbound_message and message_status with x-aulm-* headers",
    "selfhosted": "Self-hosted gateway: {event, sessionId, timestamp, data}",
    "standard": "Standard Webhooks 1.0: webhook-id, webhook-timestamp, webhook-signature",
}
TEST_EVENT = "webhook.test"
# aulm's event names for wagate's, and the statuses its message_status carries.
AULM_EVENTS = {"message.received": "inbound_message", "message.status": "message_status", TEST_EVENT: "inbound_message"}
AULM_STATUSES = ("sent", "delivered", "read", "played", "failed")
# The self-hosted gateway's events: wagate's of the same name, and `message.sent` for a sent status.
SELFHOSTED_EVENTS = ("message.received", "session.connected", "session.disconnected", "presence.update", TEST_EVENT)


@dataclass(frozen=True)
class Delivered:
    """What a body is made from: one event for one endpoint, as wagate has it."""

    event: str
    delivery_id: str
    event_id: str | None  # the event's cursor; None for a test
    session_id: str | None
    timestamp: str
    test: bool
    data: dict[str, Any]
    phone: Callable[[], str | None]  # the session's own number, looked up only when a format needs it


def wire_event(format_: str, event: str, body: dict[str, Any]) -> str:
    """The event's name as the format's receivers know it (for its headers)."""
    if format_ in ("aulm", "selfhosted"):
        return body["event"]
    if format_ == "standard":
        return body["type"]
    return event


def body_make(format_: str, delivered: Delivered) -> dict[str, Any] | None:
    """The delivery's body in this format; None when the format has no such event (nothing is sent)."""
    if format_ == "aulm":
        return _aulm_body(delivered)
    if format_ == "selfhosted":
        return _selfhosted_body(delivered)
    if format_ == "standard":
        data = {**delivered.data, "test": True} if delivered.test else delivered.data
        return {"type": delivered.event, "timestamp": delivered.timestamp, "data": data}
    return {
        "event": delivered.event,
        "deliveryId": delivered.delivery_id,
        "eventId": delivered.event_id,
        "sessionId": delivered.session_id,
        "timestamp": delivered.timestamp,
        "test": delivered.test,
        "data": delivered.data,
    }


def _aulm_body(delivered: Delivered) -> dict[str, Any] | None:
    name = AULM_EVENTS.get(delivered.event)
    data = delivered.data
    head = {
        "event": name,
        "delivery_id": delivered.delivery_id,
        "timestamp": delivered.timestamp,
        "session_id": delivered.session_id,
    }
    if name == "message_status":
        if data["status"] not in AULM_STATUSES:
            return None
        return head | {
            "message_id": data["messageId"],
            "status": data["status"],
            "from": delivered.phone(),
            "to": data["to"],
            "status_at": data["timestamp"] or delivered.timestamp,
        }
    if name != "inbound_message":
        return None
    if delivered.test:
        # What aulm's dashboard sends as a test: an inbound message, `"test": true` at the top.
        data = {
            "messageId": f"test-{delivered.delivery_id}",
            "from": delivered.phone() or "",
            "message": data["message"],
            "type": "text",
            "timestamp": delivered.timestamp,
        }
    sender = data["from"]
    content = data.get("content") or {}
    chat = content.get("chat") or content.get("chatId") or sender
    return head | {
        "test": delivered.test,
        "message": {
            "id": data["messageId"],
            "from": sender,
            "to": delivered.phone(),
            "chat_id": chat,
            "type": data["type"],
            "body": data["message"],
            "is_group": str(chat).endswith("@g.us"),
            "from_me": False,
            "media_url": content.get("url") if isinstance(content.get("url"), str) else None,
            "received_at": data["timestamp"],
        },
    }


def _selfhosted_body(delivered: Delivered) -> dict[str, Any] | None:
    event = delivered.event
    if event == "message.status":
        # The gateway tells of an outgoing message once, when it is sent.
        if delivered.data["status"] != "sent":
            return None
        event = "message.sent"
    elif event not in SELFHOSTED_EVENTS:
        return None
    data = {**delivered.data, "test": True} if delivered.test else delivered.data
    return {"event": event, "sessionId": delivered.session_id, "timestamp": delivered.timestamp, "data": data}


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body" keyed with the whole secret>` (wagate's and aulm's)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def headers_make(
    format_: str,
    secret: str,
    *,
    body: bytes,
    event: str,
    delivery_id: str,
    attempt: int,
    timestamp: int,
    event_id: str | None = None,
) -> dict[str, str]:
    """The signed headers of one attempt (`event` is the format's own name for it), and the
    event's cursor in X-Wagate-Event-Id when it has one (not for aulm's receivers)."""
    headers = _signed_headers(
        format_, secret, body=body, event=event, delivery_id=delivery_id, attempt=attempt, timestamp=timestamp
    )
    if event_id is not None and format_ != "aulm":
        headers["X-Wagate-Event-Id"] = event_id
    return headers


def _signed_headers(
    format_: str, secret: str, *, body: bytes, event: str, delivery_id: str, attempt: int, timestamp: int
) -> dict[str, str]:
    if format_ == "aulm":
        return {
            "x-aulm-event": event,
            "x-aulm-delivery-id": delivery_id,
            "x-aulm-signature": signature_header(secret, timestamp, body),
            "x-aulm-attempt": str(attempt),
        }
    if format_ == "standard":
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": StandardWebhook(secret).sign(delivery_id, moment, body.decode()),
        }
    return {
        "X-Wagate-Event": event,
        "X-Wagate-Delivery": delivery_id,
        "X-Wagate-Attempt": str(attempt),
        "X-Wagate-Signature": signature_header(secret, timestamp, body),
    }
