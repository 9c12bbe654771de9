"""The hosts page, for admins: each engine host's load, and the host that holds a session."""

from sqlalchemy import update

from extensions import db
from models import User
from services.hosts.routing import host_heartbeat
from tests.dashboard import DashboardUser


def _make_admin(app, email: str) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(is_admin=True))
        db.session.commit()


def test_an_admin_sees_each_host_with_its_load(app, client, account, shop, runtime):
    _make_admin(app, account.email)
    user = DashboardUser(client, account)
    with app.app_context():
        host_heartbeat("host-b", engine="simulator", sessions=0, capacity=40, draining=True)
    page = client.get("/hosts").get_data(as_text=True)
    assert 'href="/hosts"' in page  # in the admin's menu
    row = page.split('data-host="embedded"', 1)[1].split("</tr>", 1)[0]
    assert "1 of 1000" in row and 'value="0.001"' in row and "serving" in row
    other = page.split('data-host="host-b"', 1)[1].split("</tr>", 1)[0]
    assert "0 of 40" in other and "draining" in other
    assert "Every session that should be online has a host." in page
    fragment = user.htmx("GET", "/hosts").get_data(as_text=True)
    assert fragment.startswith('<section id="hosts-panel"')

    session_page = client.get(f"/sessions/{shop}").get_data(as_text=True)
    assert 'data-testid="session-host">Held by engine host <code>embedded</code>' in session_page


def test_the_hosts_page_is_for_admins_only(client, account):
    DashboardUser(client, account)
    assert client.get("/hosts").status_code == 404
    assert 'href="/hosts"' not in client.get("/sessions").get_data(as_text=True)
