import math

from flask import current_app
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.charts import bar_chart, rate
from blueprints.dashboard.render import render
from services.messaging.stats import stats_get


@bp.get("/stats")
@login_required
def stats():
    """Totals and the 7-day chart; htmx re-fetches just the panel when messages change."""
    body = stats_get(current_user)
    totals = body["totals"]
    # Wait out the aggregation debounce, so the re-fetch sees the counts the change produced.
    refresh_ms = math.ceil(current_app.config["STATS_DEBOUNCE_SECONDS"] * 1000) + 1000
    return render(
        "dashboard/stats.html",
        "dashboard/partials/_stats_panel.html",
        totals=totals,
        delivery_rate=rate(totals["delivered"], totals["sent"]),
        read_rate=rate(totals["read"], totals["sent"]),
        chart=bar_chart(body["chart"]),
        refresh_ms=refresh_ms,
    )
