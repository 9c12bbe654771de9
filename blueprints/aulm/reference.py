"""aulm's OpenAPI document (GET /aulm/openapi.json) and its reference page (/docs/aulm)."""

from flask import current_app, jsonify, render_template, request, url_for

from blueprints.aulm import pages
from blueprints.aulm.contract import aulm
from blueprints.security import csp


@pages.get("/aulm/openapi.json")
def openapi():
    """aulm's routes' OpenAPI 3.1 document, with this server as its server."""
    response = jsonify(aulm.document(current_app, request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@pages.get("/docs/aulm")
@csp(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")  # as /docs (Redoc)
def docs():
    """aulm's API reference, rendered in the browser from /aulm/openapi.json."""
    return render_template("docs/index.html", title="aulm API on wagate", spec_url=url_for("aulm_docs.openapi"))
