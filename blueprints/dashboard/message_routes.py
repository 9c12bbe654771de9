from flask_login import login_required

from blueprints.dashboard import bp
from blueprints.dashboard.render import render


@bp.get("/messages")
@login_required
def messages():
    """The message log."""
    return render("dashboard/messages.html")
