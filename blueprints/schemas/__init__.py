"""The native (WAMessenger) dialect's request and response schemas, one module per domain."""
