"""The API contract: schemas declared once validate requests, shape answers and make each
dialect's OpenAPI document (wiring.py); the native WAMessenger dialect (native.py)."""
