"""The API's contract: the OpenAPI document (GET /api/openapi.json) and its reference page (/docs)."""

from flask import Blueprint

bp = Blueprint("docs", __name__)

from blueprints.docs import routes  # noqa: E402,F401
