"""Prometheus metrics and JSON logs, as an operator sees them.

The embedded runtime is one process, so its web `/metrics` shows every role's series: the
web's request latency, the engine host's sends, queues and pace, the webhook attempts. A
bulk send is scraped while it runs, and the counters must add up to what was sent.
The JSON log lines carry the request id and the session id; the Grafana dashboard in docs/
charts only series that exist.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from extensions import db
from models import WaSession
from services.governor.pace import session_pause
from services.platform.logs import json_formatter
from services.platform.metrics import lease_moved
from tests.helpers import LOCAL_RECEIVERS, pair_session, wait_for

TOKEN = "scrape-token-4f2a9c"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
UNKNOWN = "919876540000"  # the simulator's "not on WhatsApp"


@pytest.fixture
def config_overrides() -> dict:
    # BULK_WAIT_SECONDS 0: a bulk send answers 202 at once, so the test scrapes while it runs.
    return {"METRICS_TOKEN": TOKEN, "BULK_WAIT_SECONDS": 0}


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics: {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def declared(text: str) -> set[str]:
    """The sample names each declared family may have (a histogram's _bucket, _count, _sum...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def test_the_web_serves_metrics_only_to_the_bearer_of_the_token(app, client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.get_json()["code"] == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", headers=SCRAPE).status_code == 200
    app.config["METRICS_TOKEN"] = ""
    hidden = client.get("/metrics", headers=SCRAPE)
    assert (hidden.status_code, hidden.get_json()["code"]) == (404, "NOT_FOUND")


def test_counters_add_up_to_a_bulk_send_scraped_while_it_runs(client, growth_session, runtime):
    account, session_id = growth_session
    contacts = [f"9198765432{i:02d}" for i in range(6)] + [UNKNOWN]
    before = scrape(client)

    answer = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": contacts, "message": "Counted hello", "delay": 100},
        headers=account.headers,
    )
    assert answer.status_code == 202, answer.get_json()
    batch_id = answer.get_json()["batchId"]

    def delta(now: dict, name: str, **labels: str) -> float:
        return value(now, name, **labels) - value(before, name, **labels)

    def settled(now: dict) -> float:
        """Sends counted since `before`, whatever their status and code."""
        names = {key for key in now.keys() | before.keys() if key[0] == "wagate_sends_total"}
        return sum(now.get(key, 0.0) - before.get(key, 0.0) for key in names)

    seen: list[float] = []  # sends counted, scrape by scrape

    def batch_counted() -> bool:
        count = settled(scrape(client))
        assert count <= len(contacts) and (not seen or count >= seen[-1]), [*seen, count]
        seen.append(count)
        report = client.get(f"/api/whatsapp/bulk-send/{batch_id}", headers=account.headers).get_json()
        return count == len(contacts) and report["status"] == "finished"

    wait_for(batch_counted, timeout=20, message="every send of the batch counted")
    after = scrape(client)
    report = client.get(f"/api/whatsapp/bulk-send/{batch_id}", headers=account.headers).get_json()
    outbox = runtime.engine_host.engine.outbox(session_id)

    assert (report["sent"], report["failed"]) == (len(contacts) - 1, 1)
    assert delta(after, "wagate_sends_total", status="sent", error_code="") == report["sent"] == len(outbox)
    assert delta(after, "wagate_sends_total", status="failed", error_code="NUMBER_NOT_ON_WHATSAPP") == 1
    assert settled(after) == len(contacts)
    # The batch's delay holds each next message back: pace waits for the gap, each with its length.
    waits = delta(after, "wagate_pace_waits_total", reason="gap")
    assert waits >= 1
    assert delta(after, "wagate_pace_wait_seconds_count", reason="gap") == waits
    # The session's queue, read at the scrape: drained, nothing waiting.
    assert value(after, "wagate_send_queue_depth", session_id=session_id) == 0
    assert ("wagate_send_queue_oldest_age_seconds", (("session_id", session_id),)) in after
    assert value(after, "wagate_engine_sessions", host="embedded") >= 1
    # HTTP latency by route: the URL rule, not the path with the batch's id in it.
    route = "/api/whatsapp/bulk-send"
    posted = delta(after, "wagate_http_request_duration_seconds_count", method="POST", route=route, status="202")
    polled = delta(
        after, "wagate_http_request_duration_seconds_count", method="GET", route=f"{route}/<batch_id>", status="200"
    )
    assert (posted, polled) == (1, len(seen))
    assert seen[0] < len(contacts), seen  # the first scrape came while the batch was under way
    assert not any(batch_id in dict(labels).get("route", "") for _, labels in after)


# The send answers 202 at once rather than waiting for an outcome the pause holds back.
@pytest.mark.parametrize("config_overrides", [{"METRICS_TOKEN": TOKEN, "SEND_WAIT_SECONDS": 0.2}])
def test_a_held_message_shows_in_its_sessions_queue_depth_and_age(app, client, shop, runtime, account):
    with app.app_context():
        session_pause(db.session.get(WaSession, shop), "held for the test")
    sent = client.post(
        f"/api/sessions/{shop}/send", json={"to": "919876543210", "message": "held"}, headers=account.headers
    )
    assert sent.status_code == 202, sent.get_json()

    def waiting() -> dict | None:
        samples = scrape(client)
        held = value(samples, "wagate_send_queue_depth", session_id=shop) == 1
        return samples if held and value(samples, "wagate_send_queue_oldest_age_seconds", session_id=shop) > 0 else None

    samples = wait_for(waiting, timeout=10, message="the held message in its session's queue metrics")
    assert value(samples, "wagate_pace_waits_total", reason="paused") >= 1


@pytest.mark.parametrize("config_overrides", [LOCAL_RECEIVERS | {"METRICS_TOKEN": TOKEN}])
def test_webhook_attempts_are_counted_and_timed_by_outcome(client, runtime, starter, receiver):
    hook = client.post("/api/webhooks", json={"url": receiver.url()}, headers=starter.headers).get_json()
    before = scrape(client)
    receiver.answer(500)  # a test delivery is not retried: failed once, it is dead-lettered
    for count in (1, 2):
        assert client.post(f"/api/webhooks/{hook['id']}/test", headers=starter.headers).status_code == 202
        wait_for(lambda count=count: len(receiver.received) == count, message=f"test delivery {count}")

    def counted() -> dict | None:
        now = scrape(client)
        succeeded = ("wagate_webhook_attempts_total", {"outcome": "succeeded"})
        dead = ("wagate_webhook_dead_letters_total", {})
        done = all(value(now, name, **labels) > value(before, name, **labels) for name, labels in (succeeded, dead))
        return now if done else None

    after = wait_for(counted, message="both attempts' outcomes counted")
    for name, outcome in (
        ("wagate_webhook_attempts_total", "failed"),
        ("wagate_webhook_attempts_total", "succeeded"),
        ("wagate_webhook_attempt_duration_seconds_count", "failed"),
        ("wagate_webhook_attempt_duration_seconds_count", "succeeded"),
    ):
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == 1, (name, outcome)
    assert value(after, "wagate_webhook_dead_letters_total") - value(before, "wagate_webhook_dead_letters_total") == 1


def test_a_dropped_connection_counts_as_an_engine_reconnect(client, shop, runtime, account):
    before = value(scrape(client), "wagate_engine_reconnects_total")
    faults = f"/api/simulator/faults?sessionId={shop}"
    assert client.put(faults, json={"disconnect": True}, headers=account.headers).status_code == 200

    def status() -> str:
        return client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()["status"]

    wait_for(lambda: status() == "reconnecting", message="the session reconnecting")
    assert value(scrape(client), "wagate_engine_reconnects_total") - before >= 1
    client.delete(faults, headers=account.headers)
    wait_for(lambda: status() == "connected", message="the session connected again")


def test_requests_no_route_matches_share_one_series_whatever_their_path_or_method(client):
    before = scrape(client)
    for path in ("/no-such-page", "/api/nothing/here/7f3a"):
        client.get(path)
    client.open("/metrics", method="BREW", headers=SCRAPE)  # a method HTTP does not define
    after = scrape(client)
    unmatched = {"method": "GET", "route": "none", "status": "404"}
    name = "wagate_http_request_duration_seconds_count"
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 2
    brewed = {"method": "other", "route": "none", "status": "405"}
    assert value(after, name, **brewed) - value(before, name, **brewed) == 1
    assert not any("no-such-page" in str(labels) or "BREW" in str(labels) for _, labels in after)


def test_lease_moves_are_counted_by_reason(client):
    before = scrape(client)
    lease_moved("takeover")
    lease_moved("takeover")
    lease_moved("drain")
    after = scrape(client)
    for reason, moves in (("takeover", 2), ("drain", 1)):
        counted = value(after, "wagate_session_lease_moves_total", reason=reason)
        assert counted - value(before, "wagate_session_lease_moves_total", reason=reason) == moves


@pytest.mark.parametrize("role", ["worker", "engine-host"])
def test_a_role_whose_metrics_port_is_taken_refuses_to_start(app, runner, role):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        setting = "WORKER_METRICS_PORT" if role == "worker" else "ENGINE_HOST_METRICS_PORT"
        app.config.update({"WAGATE_SINGLE_NODE": "1", setting: port})
        with app.app_context():  # as the flask command gives it
            result = runner.invoke(args=[role, "--burst"] if role == "worker" else [role])
    assert result.exit_code == 1, result.output
    assert f"cannot serve metrics on 127.0.0.1:{port} ({setting})" in result.output


def test_the_dashboard_charts_only_series_that_exist(client, runtime):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    charted = {name for expr in exprs for name in re.findall(r"\bwagate_[a-z_]+", expr)}
    client.get("/healthz")  # a request timed, so the HTTP histogram has samples
    exposed = declared(client.get("/metrics", headers=SCRAPE).get_data(as_text=True))
    assert charted - exposed == set()
    # Every series operators were promised is charted.
    promised = {
        "wagate_sends_total",
        "wagate_send_queue_depth",
        "wagate_send_queue_oldest_age_seconds",
        "wagate_pace_waits_total",
        "wagate_webhook_attempts_total",
        "wagate_webhook_attempt_duration_seconds_bucket",
        "wagate_engine_reconnects_total",
        "wagate_session_lease_moves_total",
        "wagate_http_request_duration_seconds_bucket",
    }
    assert promised - charted == set()


@pytest.fixture
def log_probe(app) -> str:
    """A route that logs a line, added before the app's first request."""

    def probe(session_id: str):
        logging.getLogger("wagate.probe").warning("probed %s", session_id)
        return {"probed": session_id}

    app.add_url_rule("/probe/<session_id>/log", "log_probe", probe)
    return "/probe/{}/log"


@pytest.fixture
def json_lines(caplog) -> Iterator[Callable[[], list[dict]]]:
    """The JSON lines (LOG_FORMAT=json's formatter) of what is logged at INFO and above."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_json_log_lines_carry_the_request_id_and_the_session_id(log_probe, json_lines, client, runtime, account):
    answer = client.get(log_probe.format("sess-42"), headers={"X-Request-ID": "trace-logs-1"})
    assert answer.status_code == 200
    session_id = pair_session(client, account)

    def engine_lines() -> list[dict]:
        return [line for line in json_lines() if line["logger"] == "roles.engine_events"]

    engine = wait_for(engine_lines, message="the engine host's line about the paired session")
    lines = json_lines()
    for line in lines:
        assert list(line)[:4] == ["time", "level", "logger", "message"], line
        assert line["time"].endswith("Z"), line
    [probed] = [line for line in lines if line["logger"] == "wagate.probe"]
    assert probed | {"time": None} == {
        "time": None,
        "level": "warning",
        "logger": "wagate.probe",
        "message": "probed sess-42",
        "request_id": "trace-logs-1",
        "session_id": "sess-42",
    }
    # The engine host's event thread works on the paired session: its lines name it.
    assert all(line["session_id"] == session_id for line in engine), engine
    # Nothing of a request leaks into the lines written outside one.
    assert all("request_id" not in line for line in engine), engine
