"""Database models."""

from models.batch import BulkBatch
from models.message import Message, MessageStatus
from models.plan import Plan
from models.stats import DailyStat
from models.user import User
from models.wa_session import SessionStatus, WaSession

__all__ = ["BulkBatch", "DailyStat", "Message", "MessageStatus", "Plan", "SessionStatus", "User", "WaSession"]
