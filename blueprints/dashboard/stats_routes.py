from flask_login import login_required

from blueprints.dashboard import bp
from blueprints.dashboard.render import render


@bp.get("/stats")
@login_required
def stats():
    """Statistics."""
    return render("dashboard/stats.html")
