from flask import render_template

from blueprints.main import bp


@bp.get("/")
def index():
    """The landing page: what this server is and where to start."""
    return render_template("main/index.html")
