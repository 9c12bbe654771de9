from flask import jsonify, render_template, request

from blueprints.docs import bp
from blueprints.security import csp
from services.openapi import openapi_document


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of every public API route, with this server as its server."""
    response = jsonify(openapi_document(request.url_root))
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
