import functools

from blueprints.common import (
    allowed_session_ids,
    auth_required,
    current_user,
    live_required,
    session_allowed,
    unrestricted_required,
)
from blueprints.contract.native import AUTHED, ENGINE, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.schemas import webhooks as schemas
from blueprints.webhooks import bp
from models import Webhook
from services.webhooks import endpoints as svc
from services.webhooks.formats import DEFAULT_FORMAT

WEBHOOK_ERRORS = (*AUTHED, 403, 404)


def _webhook(webhook_id: str) -> Webhook:
    """The caller's endpoint, if the request's API key may use it.

    A key limited to some sessions reaches only those sessions' endpoints; account-wide
    ones receive every session's events, so they need an unrestricted key.
    """
    webhook = svc.webhook_get(current_user(), webhook_id)
    if webhook.session_id:
        session_allowed(webhook.session_id)
    else:
        unrestricted_required("use account-wide webhooks")
    return webhook


def webhook_named(view):
    """The view gets the caller's endpoint the path names as `webhook`: somebody else's is 404
    before anything else about the request is looked at, as a missing one."""

    @functools.wraps(view)
    def wrapper(webhook_id: str, **kwargs):
        return view(webhook=_webhook(webhook_id), **kwargs)

    return wrapper


@bp.post("")
@native.operation(
    "createWebhook",
    "Webhooks",
    Answer(201, "Created: its signing secret is in this answer only", schemas.WebhookCreated),
    errors=(*WITH_BODY, *WEBHOOK_ERRORS),
)
@auth_required
@live_required
@native.request(body=schemas.WebhookCreate)
def create(body: dict):
    """Add a webhook endpoint

    Starter plan and above; every event but `presence.update` and `history.*` if `events` is left out. The
    URL must reach a public address (`400 URL_NOT_ALLOWED` otherwise, unless the operator
    allows private ones). Its secret is in this answer only.
    """
    session_id = body.get("sessionId")
    if session_id:
        session_allowed(session_id)
    else:
        unrestricted_required("create account-wide webhooks")
    webhook, secret = svc.webhook_create(
        current_user(),
        url=body["url"],
        events=body.get("events"),
        session_id=session_id,
        format_=body.get("format", DEFAULT_FORMAT),
    )
    return {
        "success": True,
        "message": "Webhook created. Copy the secret now: it is shown only this once",
        "secret": secret,
        **webhook.to_dict(),
    }, 201


@bp.get("")
@native.operation(
    "listWebhooks", "Webhooks", Answer(200, "Newest first (never their secrets)", schemas.WebhookList), errors=AUTHED
)
@auth_required
def index():
    """List webhook endpoints"""
    webhooks = [w.to_dict() for w in svc.webhooks_list(current_user(), only_sessions=allowed_session_ids())]
    return {"success": True, "webhooks": webhooks, "total": len(webhooks), "events": list(svc.EVENTS)}


@bp.get("/<webhook_id>")
@native.operation("getWebhook", "Webhooks", Answer(200, "The endpoint", schemas.WebhookView), errors=WEBHOOK_ERRORS)
@auth_required
@webhook_named
def show(webhook: Webhook):
    """Show a webhook endpoint"""
    return {"success": True, "webhook": webhook.to_dict()}


@bp.patch("/<webhook_id>")
@native.operation(
    "updateWebhook", "Webhooks", Answer(200, "Changed", schemas.WebhookView), errors=(*WITH_BODY, *WEBHOOK_ERRORS)
)
@auth_required
@live_required
@webhook_named
@native.request(body=schemas.WebhookChange)
def update(webhook: Webhook, body: dict):
    """Change a webhook endpoint

    Its `url`, `events`, `format` or `enabled` (a new format applies to deliveries made from
    then on). Enabling an endpoint again resets its failure count.
    Its session cannot change (`sessionId`, if sent, must be the one it has).
    """
    webhook = svc.webhook_update(webhook, changes=body)
    return {"success": True, "webhook": webhook.to_dict()}


@bp.delete("/<webhook_id>")
@native.operation(
    "deleteWebhook",
    "Webhooks",
    Answer(200, "Deleted, with its delivery log", schemas.WebhookDeleted),
    errors=WEBHOOK_ERRORS,
)
@auth_required
@live_required
@webhook_named
def delete(webhook: Webhook):
    """Delete a webhook endpoint

    And its delivery log.
    """
    svc.webhook_delete(webhook)
    return {"success": True, "message": "Webhook deleted"}


@bp.post("/<webhook_id>/rotate-secret")
@native.operation(
    "rotateWebhookSecret",
    "Webhooks",
    Answer(200, "The new secret, shown only here; the old one stops signing at once", schemas.SecretRotated),
    errors=WEBHOOK_ERRORS,
)
@auth_required
@live_required
@webhook_named
def rotate_secret(webhook: Webhook):
    """Rotate a webhook's secret

    The new one is in this answer only; the old one stops signing at once (pending retries too).
    """
    webhook, secret = svc.webhook_secret_rotate(webhook)
    return {
        "success": True,
        "message": "Secret rotated. Copy it now: it is shown only this once",
        "secret": secret,
        "webhook": webhook.to_dict(),
    }


@bp.get("/<webhook_id>/deliveries")
@native.operation(
    "listWebhookDeliveries",
    "Webhooks",
    Answer(200, "Newest first, each with its attempts", schemas.DeliveryList),
    errors=(400, *WEBHOOK_ERRORS),
)
@auth_required
@webhook_named
@native.request(query=schemas.DeliveriesQuery)
def deliveries(webhook: Webhook, query: dict):
    """A webhook's delivery log

    Newest first, each delivery with its attempts (status code, error, latency, the first
    500 characters of the answer).
    """
    rows = svc.webhook_deliveries(webhook, status=query.get("status"), limit=query.get("limit"))
    return {"success": True, "deliveries": [d.to_dict() for d in rows], "total": len(rows)}


QUEUED = (*WEBHOOK_ERRORS, 409, *ENGINE)


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
@native.operation(
    "redeliverWebhook",
    "Webhooks",
    Answer(202, "Queued: same delivery id and body, the next attempt number", schemas.DeliveryQueued),
    errors=QUEUED,
)
@auth_required
@live_required
@webhook_named
def redeliver(webhook: Webhook, delivery_id: str):
    """Redeliver

    Send a delivery again now, with its delivery id and body, as its next attempt.
    """
    delivery = svc.webhook_redeliver(webhook, delivery_id)
    return {"success": True, "message": "Redelivery queued", "delivery": delivery.to_dict()}, 202


@bp.post("/<webhook_id>/test")
@native.operation(
    "testWebhook",
    "Webhooks",
    Answer(202, "Queued: a webhook.test event, one attempt", schemas.DeliveryQueued),
    errors=QUEUED,
)
@auth_required
@live_required
@webhook_named
def test(webhook: Webhook):
    """Send a test event

    A `webhook.test` event (`"test": true` in the body), whatever the filter; one attempt,
    no retries.
    """
    delivery = svc.webhook_test(webhook)
    return {"success": True, "message": "Test event queued", "delivery": delivery.to_dict()}, 202
