"""The self-hosted gateway dialect's reference page, rendered in the browser from its document."""

from flask import render_template

from blueprints.security import csp
from blueprints.selfhosted import pages


@pages.get("/docs/selfhosted")
# As /docs: Redoc injects <style> elements and searches in a Web Worker made from a blob: URL.
@csp(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")
def docs():
    """The self-hosted gateway API's reference."""
    return render_template("selfhosted/docs.html")
