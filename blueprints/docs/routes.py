from flask import jsonify, make_response, render_template, request

from blueprints.docs import bp
from services.openapi import openapi_document

# The reference page's own Content-Security-Policy: this site's files only, no inline script,
# no eval. Redoc (vendored, static/vendor) styles its page by injecting <style> elements, and
# its search runs in a Web Worker made from a blob: URL; those two are all it is allowed beyond
# the dashboard's policy. (Its footer logo from cdn.redoc.ly is simply not loaded.)
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of every public API route, with this server as its server."""
    response = jsonify(openapi_document(request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, and readable by any API tool
    return response


@bp.get("/docs")
def docs():
    """The API reference, rendered in the browser from /api/openapi.json."""
    response = make_response(render_template("docs/index.html"))
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response
