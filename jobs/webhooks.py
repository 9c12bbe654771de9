"""Webhook delivery attempts (default queue)."""

from jobs.context import app_job
from services.webhooks import endpoints as webhooks


@app_job
def webhook_deliver(delivery_id: str, attempt: int) -> None:
    webhooks.webhook_delivery_attempt(delivery_id, attempt)
