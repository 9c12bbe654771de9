from flask_login import login_required

from blueprints.dashboard import bp
from blueprints.dashboard.render import render


@bp.get("/bulk")
@login_required
def bulk():
    """Bulk send."""
    return render("dashboard/bulk.html")
