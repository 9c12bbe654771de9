"""Socket.IO: connections authenticate with their JWT and join their own room."""

from blueprints.realtime.events import register

__all__ = ["register"]
