import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from tests.dashboard import DashboardUser
from tests.helpers import wait_for

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _matches(attribute: str | None, wanted: str) -> bool:
    """Like a CSS selector: the whole value, or one word of a class list."""
    return attribute is not None and (attribute == wanted or wanted in attribute.split())


@dataclass
class Node:
    tag: str
    attrs: dict
    children: list = field(default_factory=list)

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str, **attrs) -> list["Node"]:
        attrs = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
        return [
            node
            for node in self.iter()
            if node.tag == tag and all(_matches(node.attrs.get(key), value) for key, value in attrs.items())
        ]

    def find(self, tag: str, **attrs) -> "Node":
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def text(self, sep: str = " ") -> str:
        """The text a reader sees, one piece per element, joined by `sep`."""
        pieces = [child.text(sep) if isinstance(child, Node) else child.strip() for child in self.children]
        return sep.join(piece for piece in pieces if piece)

    def own_text(self) -> str:
        return " ".join(child.strip() for child in self.children if isinstance(child, str) and child.strip())


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.root = Node("document", {})
        self.open = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag, attrs):
        self.open[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        while len(self.open) > 1 and self.open.pop().tag != tag:
            pass

    def handle_data(self, data):
        self.open[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


@dataclass
class Chart:
    """The stats chart as a browser test would read it."""

    labels: list[str]
    series: dict[str, list[int]]
    ticks: list[int]
    table: list[list[str]]
    totals: dict[str, str]
    page: Node


def read_chart(html: str) -> Chart:
    page = parse(html)
    svg = page.find("svg", data_testid="stats-chart")
    bars = svg.find_all("rect", class_="bar")
    return Chart(
        labels=[label.text(", ") for label in svg.find_all("text", class_="day-label")],
        series={
            name: [int(bar.attrs["data-value"]) for bar in bars if bar.attrs["data-series"] == name]
            for name in ("sent", "delivered", "read", "failed")
        },
        ticks=[int(tick.text()) for tick in svg.find_all("text", class_="tick-label")],
        table=[[cell.text() for cell in row.children if isinstance(cell, Node)] for row in page.find_all("tr")],
        totals={
            card.attrs["data-testid"].removeprefix("total-"): card.find("dd").own_text()
            for card in page.find_all("div", class_="card")
            if card.attrs.get("data-testid", "").startswith("total-")
        },
        page=page,
    )


def _login(client, account) -> None:
    DashboardUser(client, account)


def _send(client, account, session_id, to: str) -> None:
    response = client.post(
        f"/api/sessions/{session_id}/send", json={"to": to, "message": "Hello from wagate!"}, headers=account.headers
    )
    assert response.get_json()["messageId"], response.get_json()


def _api_stats(client, account) -> dict:
    return client.get("/api/messages/stats", headers=account.headers).get_json()


@pytest.fixture
def busy_week(client, account, shop) -> dict:
    """Two messages that reach the phone and are read, one to a number that fails; the aggregated API stats."""
    for to in ("919876543210", "919876543211", "919876540000"):
        _send(client, account, shop, to)

    def aggregated():
        body = _api_stats(client, account)
        totals = body["totals"]
        return (totals["sent"], totals["delivered"], totals["read"], totals["failed"]) == (2, 2, 2, 1) and body

    return wait_for(aggregated, message="aggregated stats")


def test_the_statistics_page_needs_a_login(client):
    response = client.get("/stats")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_a_new_account_sees_an_empty_week_and_how_to_fill_it(client, account):
    _login(client, account)
    response = client.get("/stats")
    assert response.status_code == 200
    chart = read_chart(response.get_data(as_text=True))
    assert chart.labels == _api_stats(client, account)["chart"]["labels"]
    assert chart.series == {name: [0] * 7 for name in ("sent", "delivered", "read", "failed")}
    assert chart.ticks == [0, 1, 2, 3, 4]
    assert "Send your first message to see it here" in chart.page.find("figcaption", data_testid="stats-empty").text()
    assert chart.totals == {
        "sent": "0",
        "delivered": "0",
        "read": "0",
        "failed": "0",
        "received": "0",
        "delivery-rate": "—",
        "read-rate": "—",
    }


def test_the_chart_draws_the_same_week_as_the_api(client, account, busy_week):
    _login(client, account)
    html = client.get("/stats").get_data(as_text=True)
    chart = read_chart(html)
    api = busy_week["chart"]
    assert len(chart.labels) == 7 and chart.labels == api["labels"]
    assert chart.series == {name: api[name] for name in ("sent", "delivered", "read", "failed")}
    assert chart.series["sent"][-1] == 2 and chart.series["failed"][-1] == 1
    assert chart.ticks == [0, 1, 2]
    assert chart.totals == {
        "sent": "2",
        "delivered": "2",
        "read": "2",
        "failed": "1",
        "received": "0",
        "delivery-rate": "100%",
        "read-rate": "100%",
    }
    assert not chart.page.find_all("figcaption", data_testid="stats-empty")
    svg = chart.page.find("svg", data_testid="stats-chart")
    assert svg.attrs["role"] == "img"
    assert "2 sent, 2 delivered, 2 read, 1 failed" in svg.find("desc").text()
    today = svg.find("g", data_day=api["labels"][-1])
    assert [bar.find("title").text() for bar in today.find_all("rect")] == [
        f"{api['labels'][-1]}: {count}" for count in ("2 sent", "2 delivered", "2 read", "1 failed")
    ]
    header, *rows = chart.table
    assert header == ["Day", "Sent", "Delivered", "Read", "Failed"]
    assert rows[-1] == [api["labels"][-1], "2", "2", "2", "1"]
    assert [row[0] for row in rows] == api["labels"]


def test_htmx_refreshes_get_just_the_panel_after_aggregation_caught_up(app, client, account):
    _login(client, account)
    page = parse(client.get("/stats").get_data(as_text=True))
    panel = page.find("div", id="stats-panel")
    debounce_ms = int(app.config["STATS_DEBOUNCE_SECONDS"] * 1000)
    trigger = re.fullmatch(r"wa-messages from:body delay:(\d+)ms, wa-resync from:body", panel.attrs["hx-trigger"])
    assert trigger and int(trigger.group(1)) > debounce_ms
    assert panel.attrs["hx-get"] == "/stats"

    fragment = client.get(panel.attrs["hx-get"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment
    fragment_root = parse(fragment)
    assert fragment_root.find("div", id="stats-panel").attrs["hx-trigger"] == panel.attrs["hx-trigger"]
    assert fragment_root.find_all("svg", data_testid="stats-chart")


def test_another_users_statistics_stay_at_zero(app, account, make_account, busy_week):
    other = make_account()
    browser = app.test_client()
    _login(browser, other)
    chart = read_chart(browser.get("/stats").get_data(as_text=True))
    assert chart.series == {name: [0] * 7 for name in ("sent", "delivered", "read", "failed")}
    assert set(chart.totals.values()) == {"0", "—"}
    assert chart.page.find_all("figcaption", data_testid="stats-empty")
