"""Database models."""

from models.plan import Plan
from models.user import User
from models.wa_session import SessionStatus, WaSession

__all__ = ["Plan", "SessionStatus", "User", "WaSession"]
