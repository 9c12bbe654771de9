"""Socket.IO: connections authenticate with their JWT and join their own room."""

from blueprints.realtime import events  # noqa: F401
