from flask import jsonify, request

from blueprints.common import (
    allowed_session_ids,
    auth_required,
    current_user,
    json_body,
    live_required,
    session_allowed,
    unrestricted_required,
)
from blueprints.webhooks import bp
from models import Webhook
from services.webhooks import endpoints as svc


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


@bp.post("")
@auth_required
@live_required
def create():
    """Create an endpoint: {url, events?, sessionId?}; its secret is in this answer only."""
    body = json_body()
    session_id = body.get("sessionId")
    if session_id:
        session_allowed(session_id)
    else:
        unrestricted_required("create account-wide webhooks")
    webhook, secret = svc.webhook_create(
        current_user(), url=body.get("url"), events=body.get("events"), session_id=session_id
    )
    return jsonify(
        success=True,
        message="Webhook created. Copy the secret now: it is shown only this once",
        secret=secret,
        **webhook.to_dict(),
    ), 201


@bp.get("")
@auth_required
def index():
    """List the caller's endpoints, newest first (never their secrets)."""
    webhooks = [w.to_dict() for w in svc.webhooks_list(current_user(), only_sessions=allowed_session_ids())]
    return jsonify(success=True, webhooks=webhooks, total=len(webhooks), events=list(svc.EVENTS))


@bp.get("/<webhook_id>")
@auth_required
def show(webhook_id: str):
    """Show one endpoint."""
    return jsonify(success=True, webhook=_webhook(webhook_id).to_dict())


@bp.patch("/<webhook_id>")
@auth_required
@live_required
def update(webhook_id: str):
    """Change an endpoint's url, events or enabled (enabling it again resets its failure count)."""
    webhook = svc.webhook_update(_webhook(webhook_id), changes=json_body())
    return jsonify(success=True, webhook=webhook.to_dict())


@bp.delete("/<webhook_id>")
@auth_required
@live_required
def delete(webhook_id: str):
    """Delete an endpoint and its delivery log."""
    svc.webhook_delete(_webhook(webhook_id))
    return jsonify(success=True, message="Webhook deleted")


@bp.post("/<webhook_id>/rotate-secret")
@auth_required
@live_required
def rotate_secret(webhook_id: str):
    """Replace the endpoint's secret; the new one is in this answer only, the old one stops now."""
    webhook, secret = svc.webhook_secret_rotate(_webhook(webhook_id))
    return jsonify(
        success=True,
        message="Secret rotated. Copy it now: it is shown only this once",
        secret=secret,
        webhook=webhook.to_dict(),
    )


@bp.get("/<webhook_id>/deliveries")
@auth_required
def deliveries(webhook_id: str):
    """The endpoint's delivery log, newest first: ?status=pending|failed|succeeded|dead, ?limit= (50)."""
    rows = svc.webhook_deliveries(
        _webhook(webhook_id), status=request.args.get("status"), limit=request.args.get("limit")
    )
    return jsonify(success=True, deliveries=[d.to_dict() for d in rows], total=len(rows))


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
@auth_required
@live_required
def redeliver(webhook_id: str, delivery_id: str):
    """Send a delivery again now, with its delivery id and body, as its next attempt."""
    delivery = svc.webhook_redeliver(_webhook(webhook_id), delivery_id)
    return jsonify(success=True, message="Redelivery queued", delivery=delivery.to_dict()), 202


@bp.post("/<webhook_id>/test")
@auth_required
@live_required
def test(webhook_id: str):
    """Send the endpoint a webhook.test event ("test": true in the body)."""
    delivery = svc.webhook_test(_webhook(webhook_id))
    return jsonify(success=True, message="Test event queued", delivery=delivery.to_dict()), 202
