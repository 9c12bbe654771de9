from flask import abort
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.render import render
from services.hosts.overview import hosts_overview


@bp.get("/hosts")
@login_required
def hosts():
    """For admins: the engine hosts, how full each is, and the sessions waiting for one
    (the part that refreshes itself, for htmx)."""
    if not current_user.is_admin:
        abort(404)
    return render("dashboard/hosts.html", "dashboard/partials/_hosts_panel.html", overview=hosts_overview())
