"""Webhook endpoints over the API: create (secret shown once), list, change, delete; deliveries."""

from flask import Blueprint

from blueprints.common import api_rate_limit

bp = Blueprint("webhooks", __name__)
api_rate_limit(bp)

from blueprints.webhooks import routes  # noqa: E402,F401
