"""Domain events: declared once (catalog), published once (bus), heard by Socket.IO, SSE
streams, webhooks, stats and bulk progress (subscribers)."""
