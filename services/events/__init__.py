"""Live events to their subscribers: Socket.IO rooms and each session's SSE stream."""
