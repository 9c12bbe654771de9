"""One package per feature; each exposes `bp` (and `events.py` for Socket.IO handlers)."""
