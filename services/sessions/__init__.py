"""WhatsApp sessions: their lifecycle, pairing and QR codes, presence, groups and number checks."""
