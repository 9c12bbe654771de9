"""The browser app: server-rendered pages and htmx fragments over the same services as the API."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from blueprints.dashboard import (  # noqa: E402,F401
    account_routes,
    bulk_routes,
    host_routes,
    key_routes,
    message_routes,
    pace_routes,
    routes,
    scheduled_routes,
    stats_routes,
    webhook_routes,
)
