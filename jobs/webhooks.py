"""Webhook delivery attempts (the webhook queue)."""

from jobs.context import app_job
from services.webhooks import delivery


@app_job
def webhook_deliver(delivery_id: str, attempt: int) -> None:
    delivery.webhook_delivery_attempt(delivery_id, attempt)
