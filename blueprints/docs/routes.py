from flask import current_app, jsonify, render_template, request

from blueprints.contract.native import PUBLIC, native
from blueprints.contract.wiring import Answer
from blueprints.docs import bp
from blueprints.schemas.service import OpenApiDocument
from blueprints.security import csp


@bp.get("/api/openapi.json")
@native.operation(
    "openapi", "Service", Answer(200, "The OpenAPI 3.1 document of this API", OpenApiDocument), security=PUBLIC
)
def openapi():
    """This document

    The OpenAPI 3.1 document of every public API route, made from the routes' schemas, with
    this server as its server.
    """
    response = jsonify(native.document(current_app, request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, and readable by any API tool
    return response


@bp.get("/docs")
# Redoc (vendored, static/vendor) styles its page by injecting <style> elements, and its search
# runs in a Web Worker made from a blob: URL: the two things this page needs beyond the site's
# policy. Scripts stay this site's files only, without eval. (The logo Redoc would fetch from
# cdn.redoc.ly for its sidebar is cut out of the vendored bundle: the page loads nothing from
# other sites.)
@csp(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")
def docs():
    """The API reference, rendered in the browser from /api/openapi.json."""
    return render_template("docs/index.html")
