"""Database models."""

from models.api_key import ApiKey
from models.batch import BulkBatch
from models.contact import Contact
from models.event import Event
from models.message import Message, MessageStatus
from models.plan import Plan
from models.quota import QuotaUsage
from models.shared_state import NeonizeSent, SimulatorReceipt, StoredFilePart
from models.stats import DailyStat
from models.user import User
from models.wa_session import SessionStatus, WaSession
from models.webhook import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "ApiKey",
    "BulkBatch",
    "Contact",
    "DailyStat",
    "Event",
    "Message",
    "MessageStatus",
    "NeonizeSent",
    "Plan",
    "QuotaUsage",
    "SessionStatus",
    "SimulatorReceipt",
    "StoredFilePart",
    "User",
    "WaSession",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
