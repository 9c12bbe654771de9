"""Webhooks: signed deliveries of real events to a real local receiver, the retry ladder,
Retry-After, dead-lettering, auto-disable, private-address refusals, filters and scoping."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from extensions import db
from models import WebhookDelivery
from services.events.catalog import BulkProgress
from services.webhooks.delivery import webhook_deliveries_resume, webhook_delivery_attempt
from services.webhooks.endpoints import webhooks_dispatch
from tests.helpers import LOCAL_RECEIVERS, decode_qr, pair_session, wait_for
from tests.receiver import HANG, Answer, Receiver

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")

SECRET = re.compile(r"^whsec_[0-9a-f]{64}$")


@pytest.fixture
def other_receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS


@pytest.fixture
def shop_owner(starter):
    return starter


def readme_snippet(language: str) -> str:
    """A verification snippet exactly as README.md prints it."""
    section = (ROOT / "README.md").read_text().split("### Verifying webhook signatures", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def readme_verify():
    namespace: dict = {}
    exec(readme_snippet("python"), namespace)
    return namespace["verify_wagate_signature"]


def _create(client, account, url, **body) -> dict:
    response = client.post("/api/webhooks", json={"url": url, **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _deliveries(client, account, webhook_id, **params) -> list[dict]:
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries", query_string=params, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["deliveries"]


def _settled(client, account, webhook_id, count=1):
    """Wait until the endpoint has `count` deliveries and none is waiting for an attempt."""

    def check():
        deliveries = _deliveries(client, account, webhook_id)
        return len(deliveries) >= count and all(d["status"] != "pending" for d in deliveries) and deliveries

    return wait_for(check, timeout=20, message=f"{count} settled deliveries")


def _inbound(client, account, session_id, text="Hi shop", sender="447911123456"):
    response = client.post(
        f"/api/simulator/sessions/{session_id}/inbound", json={"from": sender, "message": text}, headers=account.headers
    )
    assert response.status_code in (200, 202), response.get_json()


def test_deliveries_are_signed_and_the_readme_snippet_verifies_them(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    secret = created["secret"]
    assert SECRET.match(secret) and created["secretHint"] == secret[:10]
    assert created["enabled"] is True and created["sessionId"] is None
    assert created["events"] == [
        "message.received",
        "message.status",
        "session.connected",
        "session.disconnected",
        "session.qr",
        "bulk.finished",
        "session.paused",
    ]  # presence.update only when asked for
    response = client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    assert response.status_code == 202
    delivery_id = response.get_json()["delivery"]["id"]

    [request] = wait_for(lambda: receiver.received, message="the test delivery")
    verify = readme_verify()
    signature = request.headers["X-Wagate-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(request.body, signature, secret) is True
    assert verify(request.body.replace(b"reachable", b"REACHABLE"), signature, secret) is False
    assert verify(request.body, signature, "whsec_" + "0" * 64) is False
    stale = re.sub(r"t=(\d+)", lambda m: f"t={int(m.group(1)) - 3600}", signature)
    assert verify(request.body, stale, secret) is False
    assert request.headers["Content-Type"] == "application/json"
    assert (request.headers["X-Wagate-Event"], request.delivery_id, request.attempt) == ("webhook.test", delivery_id, 1)
    body = json.loads(request.body)
    assert set(body) == {"event", "deliveryId", "eventId", "sessionId", "timestamp", "test", "data"}
    assert (body["event"], body["deliveryId"], body["eventId"], body["sessionId"], body["test"]) == (
        "webhook.test",
        delivery_id,
        None,
        None,
        True,
    )
    assert body["timestamp"].endswith("Z") and body["data"]["webhookId"] == created["id"]

    [logged] = _settled(client, starter, created["id"])
    assert (logged["status"], logged["attempts"], logged["test"]) == ("succeeded", 1, True)
    [attempt] = logged["attemptLog"]
    assert (attempt["attempt"], attempt["statusCode"], attempt["success"]) == (1, 200, True)
    assert attempt["response"] == '{"ok": true}' and attempt["latencyMs"] >= 0


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_readme_node_snippet_verifies_a_real_delivery(client, runtime, starter, receiver, tmp_path):
    created = _create(client, starter, receiver.url())
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [request] = wait_for(lambda: receiver.received, message="the test delivery")
    script = tmp_path / "verify.js"
    script.write_text(
        readme_snippet("js")
        + """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const body = Buffer.from(input.body, "base64");
console.log(JSON.stringify([
  verifyWagateSignature(body, input.header, input.secret),
  verifyWagateSignature(Buffer.concat([body, Buffer.from(" ")]), input.header, input.secret),
  verifyWagateSignature(body, input.header, "whsec_wrong"),
]));
"""
    )
    payload = {
        "body": base64.b64encode(request.body).decode(),
        "header": request.headers["X-Wagate-Signature"],
        "secret": created["secret"],
    }
    result = subprocess.run(
        [NODE, str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == [True, False, False]


def test_a_receiver_failing_three_times_gets_one_success_on_attempt_4_with_the_same_delivery(
    client, starter, receiver, shop
):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    receiver.answer(500, 502, Answer(503, body=b"busy"))
    _inbound(client, starter, shop, text="Where is my order?")

    wait_for(lambda: len(receiver.received) == 4, timeout=20, message="four attempts")
    [delivery] = _settled(client, starter, created["id"])
    assert [r.attempt for r in receiver.received] == [1, 2, 3, 4]
    assert {r.delivery_id for r in receiver.received} == {delivery["id"]}
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    assert [r.answered for r in receiver.received] == [500, 502, 503, 200]
    assert len(receiver.succeeded) == 1 and receiver.succeeded[0].attempt == 4
    verify = readme_verify()
    assert all(verify(r.body, r.headers["X-Wagate-Signature"], created["secret"]) for r in receiver.received)
    assert json.loads(receiver.received[0].body)["data"]["message"] == "Where is my order?"

    assert (delivery["status"], delivery["attempts"], delivery["nextAttemptAt"]) == ("succeeded", 4, None)
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [500, 502, 503, 200]
    assert delivery["attemptLog"][2]["response"] == "busy"
    # The success reset the endpoint's count of failures in a row.
    webhook = client.get(f"/api/webhooks/{created['id']}", headers=starter.headers).get_json()["webhook"]
    assert webhook["consecutiveFailures"] == 0 and webhook["lastSuccessAt"] and webhook["lastFailureAt"]
    assert webhook["failingSince"] is None


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [3600] * 5}])
def test_retry_after_from_the_receiver_replaces_the_ladder(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    receiver.answer(Answer(503, headers={"Retry-After": "1"}))
    _inbound(client, starter, shop)
    wait_for(lambda: len(receiver.succeeded) == 1, timeout=20, message="the retry after Retry-After")
    [delivery] = _settled(client, starter, created["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_AFTER_CAP": 120}])
def test_retry_after_is_capped(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    receiver.answer(Answer(429, headers={"Retry-After": "86400"}))
    _inbound(client, starter, shop)
    [delivery] = _settled(client, starter, created["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    next_at = datetime.fromisoformat(delivery["nextAttemptAt"])
    wait = (next_at - datetime.fromisoformat(delivery["attemptLog"][0]["at"])).total_seconds()
    assert 119 <= wait <= 121


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [1, 1]}])
def test_after_the_ladder_a_delivery_is_dead_until_redelivered_by_hand(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    receiver.answer(500, 500, 500)
    _inbound(client, starter, shop)
    [delivery] = wait_for(
        lambda: [d for d in _deliveries(client, starter, created["id"]) if d["status"] == "dead"], timeout=20
    )
    assert (delivery["attempts"], delivery["nextAttemptAt"]) == (3, None)
    assert [r.attempt for r in receiver.received] == [1, 2, 3]
    assert _deliveries(client, starter, created["id"], status="dead")[0]["id"] == delivery["id"]
    assert _deliveries(client, starter, created["id"], status="succeeded") == []

    response = client.post(
        f"/api/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver", headers=starter.headers
    )
    assert response.status_code == 202
    wait_for(lambda: receiver.succeeded, message="the redelivery")
    assert (receiver.received[-1].attempt, receiver.received[-1].delivery_id) == (4, delivery["id"])
    assert receiver.received[-1].body == receiver.received[0].body
    [redelivered] = _settled(client, starter, created["id"])
    assert (redelivered["status"], redelivered["attempts"]) == ("succeeded", 4)


@pytest.mark.parametrize(
    "config_overrides",
    [{**LOCAL_RECEIVERS, "WEBHOOK_MAX_CONSECUTIVE_FAILURES": 3, "WEBHOOK_DISABLE_AFTER_SECONDS": 0}],
)
def test_an_endpoint_failing_too_often_in_a_row_is_disabled_until_enabled_again(
    client, starter, receiver, other_receiver, shop
):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    witness = _create(client, starter, other_receiver.url(), events=["message.received"])
    receiver.answer(500, 500, 500, 500, 500)

    def disabled():
        webhook = client.get(f"/api/webhooks/{created['id']}", headers=starter.headers).get_json()["webhook"]
        return not webhook["enabled"] and webhook

    _inbound(client, starter, shop)
    webhook = wait_for(disabled, timeout=20, message="the endpoint disabled")
    assert webhook["consecutiveFailures"] == 3 and "3 failed attempts in a row" in webhook["disabledReason"]
    [delivery] = _settled(client, starter, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["nextAttemptAt"]) == ("dead", 3, None)
    assert len(receiver.received) == 3

    # Disabled: new events make no deliveries; tests and redeliveries are refused.
    _inbound(client, starter, shop, text="Anyone there?", sender="447911000001")
    test = client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    assert (test.status_code, test.get_json()["code"]) == (409, "WEBHOOK_DISABLED")
    # The witness's delivery of the second message was made with any other, in one transaction.
    wait_for(lambda: len(_deliveries(client, starter, witness["id"])) == 2)
    assert len(_deliveries(client, starter, created["id"])) == 1

    enabled = client.patch(f"/api/webhooks/{created['id']}", json={"enabled": True}, headers=starter.headers)
    webhook = enabled.get_json()["webhook"]
    assert (webhook["enabled"], webhook["disabledReason"], webhook["consecutiveFailures"]) == (True, None, 0)
    assert webhook["failingSince"] is None
    receiver.answer(200)
    redeliver = client.post(
        f"/api/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver", headers=starter.headers
    )
    assert redeliver.status_code == 202
    wait_for(lambda: receiver.succeeded, message="the redelivery after enabling")


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            **LOCAL_RECEIVERS,
            "WEBHOOK_RETRY_DELAYS": [1] * 10,
            "WEBHOOK_MAX_CONSECUTIVE_FAILURES": 3,
            "WEBHOOK_DISABLE_AFTER_SECONDS": 3,
        }
    ],
)
def test_an_endpoint_is_disabled_only_after_failing_for_the_configured_time(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), events=["message.received"])

    def webhook() -> dict:
        return client.get(f"/api/webhooks/{created['id']}", headers=starter.headers).get_json()["webhook"]

    def attempts_at(delivery: dict) -> list[datetime]:
        return [datetime.fromisoformat(attempt["at"]) for attempt in delivery["attemptLog"]]

    # Two failures, then a success: the clock of failing starts again.
    receiver.answer(500, 500, 200, *[500] * 20)
    _inbound(client, starter, shop, text="First")
    [first] = wait_for(
        lambda: [d for d in _deliveries(client, starter, created["id"]) if d["status"] == "succeeded"], timeout=20
    )
    assert webhook()["failingSince"] is None

    _inbound(client, starter, shop, text="Second", sender="447911000002")
    disabled = wait_for(lambda: not webhook()["enabled"] and webhook(), timeout=20, message="the endpoint disabled")
    [second] = [d for d in _deliveries(client, starter, created["id"]) if d["id"] != first["id"]]
    assert (second["status"], second["nextAttemptAt"]) == ("dead", None)
    at = attempts_at(second)
    failing_since = datetime.fromisoformat(disabled["failingSince"])
    assert failing_since == at[0] > attempts_at(first)[-1]
    # Its third failure in a row reached the count but not the time: it was retried. The
    # first failure at least 3 s after the first one disabled the endpoint, and was the last.
    assert len(at) >= 4 and at[2] - at[0] < timedelta(seconds=3)
    assert at[-2] - at[0] < timedelta(seconds=3) <= at[-1] - at[0]
    assert datetime.fromisoformat(disabled["disabledAt"]) == at[-1]
    assert disabled["consecutiveFailures"] == len(at)
    span = int((at[-1] - at[0]).total_seconds())
    assert disabled["disabledReason"] == (
        f"Disabled after failing for {span} s: {len(at)} failed attempts in a row; fix the endpoint, then enable it"
    )
    assert len(receiver.received) == 3 + len(at)


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [3600]}])
def test_a_manual_redelivery_wins_over_the_scheduled_retry_and_a_lost_retry_is_resumed(
    app, client, starter, receiver, shop
):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    receiver.answer(500)
    _inbound(client, starter, shop)
    [delivery] = _settled(client, starter, created["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)

    client.post(f"/api/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver", headers=starter.headers)
    wait_for(lambda: receiver.succeeded, message="the redelivery")
    [delivery] = _settled(client, starter, created["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
    # The retry scheduled for attempt 2 fires later and finds it made: nothing is sent.
    with app.app_context():
        webhook_delivery_attempt(delivery["id"], 2)
    assert len(receiver.received) == 2

    # A failed delivery whose retry fell due and was lined up, its job then lost (Redis
    # restarted without its data), is lined up again when Redis's loss is noticed.
    receiver.answer(500)
    _inbound(client, starter, shop, text="Second", sender="447911000002")
    failed = wait_for(lambda: _deliveries(client, starter, created["id"], status="failed"), timeout=20)
    with app.app_context():
        lost = db.session.get(WebhookDelivery, failed[0]["id"])
        lost.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        lost.claimed_until = datetime.now(UTC) + timedelta(seconds=30)  # lined up: its job is on the queue
        db.session.commit()
        webhook_delivery_attempt(failed[0]["id"], 1)  # a second run of the first attempt's job
        assert len(receiver.received) == 3
        assert webhook_deliveries_resume() == 1
    wait_for(lambda: len(receiver.succeeded) == 2, message="the resumed retry")
    assert receiver.received[-1].attempt == 2 and receiver.received[-1].delivery_id == failed[0]["id"]


def test_redirects_are_not_followed(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    receiver.answer(Answer(302, headers={"Location": receiver.url("/elsewhere")}))
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [delivery] = _settled(client, starter, created["id"])
    [attempt] = delivery["attemptLog"]
    assert (delivery["status"], attempt["statusCode"], attempt["success"]) == ("dead", 302, False)
    assert "redirects are not followed" in attempt["error"]
    assert receiver.at("/elsewhere") == []


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_TIMEOUT_SECONDS": 0.5}])
def test_an_attempt_gives_up_after_the_timeout(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    receiver.answer(HANG)
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [delivery] = _settled(client, starter, created["id"])
    receiver.release.set()
    [attempt] = delivery["attemptLog"]
    assert attempt["statusCode"] is None and attempt["error"] == "No answer within 0.5 s"
    assert 400 <= attempt["latencyMs"] < 5000


@pytest.mark.parametrize("config_overrides", [{}])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.8.9.10:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://172.16.0.1/hook",
        "http://172.31.255.254/hook",
        "http://192.168.1.1/hook",
        "http://localhost:8080/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://2130706433/hook",
        "https://100.64.0.1/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_private_loopback_and_link_local_urls_are_refused(client, starter, url):
    response = client.post("/api/webhooks", json={"url": url}, headers=starter.headers)
    body = response.get_json()
    assert (response.status_code, body["code"], body["field"]) == (400, "URL_NOT_ALLOWED", "url"), body
    assert "ALLOW_PRIVATE_URLS" in body["message"]
    assert client.get("/api/webhooks", headers=starter.headers).get_json()["total"] == 0


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "http://user:pw@example.com/hook", "not a url", "", None, "http:///x"]
)
def test_urls_that_are_not_http_are_invalid(client, starter, url):
    response = client.post("/api/webhooks", json={"url": url}, headers=starter.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_URL")


def test_the_url_is_checked_again_before_every_attempt(app, client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    app.config["ALLOW_PRIVATE_URLS"] = False  # as if the host now resolved somewhere private
    patched = client.patch(
        f"/api/webhooks/{created['id']}", json={"url": receiver.url("/other")}, headers=starter.headers
    )
    assert (patched.status_code, patched.get_json()["code"]) == (400, "URL_NOT_ALLOWED")
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [delivery] = _settled(client, starter, created["id"])
    [attempt] = delivery["attemptLog"]
    assert attempt["statusCode"] is None and "private" in attempt["error"]
    assert receiver.received == []


def test_real_events_reach_the_endpoint(client, starter, receiver, runtime):
    created = _create(client, starter, receiver.url())
    session_id = client.post("/api/sessions", json={"name": "Shop"}, headers=starter.headers).get_json()["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=starter.headers).get_json()
    client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": "919812345678"})
    wait_for(lambda: any(r.headers["X-Wagate-Event"] == "session.connected" for r in receiver.received))
    _inbound(client, starter, session_id, text="Hello shop")
    sent = client.post(
        f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": "Hi!"}, headers=starter.headers
    ).get_json()

    def events():
        return [(json.loads(r.body)["event"], json.loads(r.body)["data"]) for r in receiver.received]

    wait_for(lambda: ("message.status", "read") in {(e, d.get("status")) for e, d in events()}, timeout=20)
    by_event: dict[str, list[dict]] = {}
    for event, data in events():
        by_event.setdefault(event, []).append(data)
    assert by_event["session.qr"][0]["qr"] == decode_qr(qr["qrCode"])  # the text, not the PNG
    assert all("data:image" not in r.body.decode() for r in receiver.received)
    assert by_event["session.connected"] == [{"sessionId": session_id, "phone": "919812345678"}]
    [inbound] = by_event["message.received"]
    assert (inbound["sessionId"], inbound["from"], inbound["message"]) == (session_id, "447911123456", "Hello shop")
    statuses = [d["status"] for d in by_event["message.status"] if d["messageId"] == sent["messageId"]]
    assert statuses[:1] == ["sent"] and "read" in statuses
    for request in receiver.received:
        body = json.loads(request.body)
        assert body["sessionId"] == session_id and body["test"] is False
        assert body["deliveryId"] == request.delivery_id and request.headers["X-Wagate-Event"] == body["event"]
    verify = readme_verify()
    assert all(verify(r.body, r.headers["X-Wagate-Signature"], created["secret"]) for r in receiver.received)

    client.post(f"/api/sessions/{session_id}/disconnect", headers=starter.headers)
    wait_for(lambda: any(json.loads(r.body)["event"] == "session.disconnected" for r in receiver.received))


def test_event_filters_and_session_scopes(client, runtime, make_account, receiver):
    account = make_account(plan="growth")
    first, second = pair_session(client, account), pair_session(client, account, phone="919800000002")
    everywhere = _create(client, account, receiver.url("/all"), events=["message.received"])
    only_first = _create(client, account, receiver.url("/first"), sessionId=first)
    only_second = _create(client, account, receiver.url("/second"), sessionId=second, events=["message.status"])
    assert only_first["sessionId"] == first

    _inbound(client, account, first, text="to the first")
    _inbound(client, account, second, text="to the second")
    wait_for(lambda: len(receiver.at("/all")) == 2 and receiver.at("/first"), message="inbound deliveries")
    received = {path: [json.loads(r.body) for r in receiver.at(path)] for path in ("/all", "/first")}
    assert sorted(body["data"]["message"] for body in received["/all"]) == ["to the first", "to the second"]
    assert [(b["event"], b["sessionId"]) for b in received["/first"]] == [("message.received", first)]
    # Any other delivery of these two events was made with those, in the same transaction.
    assert len(_deliveries(client, account, only_first["id"])) == 1
    assert _deliveries(client, account, only_second["id"]) == []

    client.post(f"/api/sessions/{second}/send", json={"to": "919876543210", "message": "Hi"}, headers=account.headers)
    wait_for(lambda: receiver.at("/second"), message="the status delivery")
    assert {json.loads(r.body)["event"] for r in receiver.at("/second")} == {"message.status"}
    assert {json.loads(r.body)["sessionId"] for r in receiver.at("/second")} == {second}
    assert all(json.loads(r.body)["event"] == "message.received" for r in receiver.at("/all"))
    assert all(d["sessionId"] == first for d in _deliveries(client, account, only_first["id"]))
    assert len(_deliveries(client, account, everywhere["id"])) == 2


def test_a_bulk_send_finishing_makes_one_delivery(app, client, runtime, make_account, receiver):
    account = make_account(plan="growth")
    session_id = pair_session(client, account, phone=None)
    created = _create(client, account, receiver.url(), events=["bulk.finished"])
    report = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": ["919876543210", "919876543211"], "message": "Sale!", "delay": 0},
        headers=account.headers,
    ).get_json()
    [delivery] = _settled(client, account, created["id"])
    assert delivery["event"] == "bulk.finished"
    assert delivery["payload"]["data"] == {
        "batchId": report["batchId"],
        "sessionId": session_id,
        "status": "finished",
        "total": 2,
        "sent": 2,
        "failed": 0,
        "pending": 0,
    }
    # Progress that says "finished" again (a racing message, a reopened batch) makes no second one.
    with app.app_context():
        finished_again = BulkProgress.model_validate(delivery["payload"]["data"])
        assert webhooks_dispatch(account.user_id, finished_again) == []
    assert len(_deliveries(client, account, created["id"])) == 1


def test_the_secret_is_shown_once_and_rotating_it_changes_the_signatures(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    listed = client.get("/api/webhooks", headers=starter.headers)
    shown = client.get(f"/api/webhooks/{created['id']}", headers=starter.headers)
    for response in (listed, shown):
        assert created["secret"] not in response.get_data(as_text=True)
        assert created["secret"][10:20] not in response.get_data(as_text=True)
    assert listed.get_json()["webhooks"][0]["secretHint"] == created["secret"][:10]

    rotated = client.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=starter.headers).get_json()
    new_secret = rotated["secret"]
    assert SECRET.match(new_secret) and new_secret != created["secret"]
    assert rotated["webhook"]["secretHint"] == new_secret[:10]
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [request] = wait_for(lambda: receiver.received)
    verify = readme_verify()
    assert verify(request.body, request.headers["X-Wagate-Signature"], new_secret) is True
    assert verify(request.body, request.headers["X-Wagate-Signature"], created["secret"]) is False


def test_changing_and_deleting_an_endpoint(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url(), events=["message.received"])
    url = f"/api/webhooks/{created['id']}"
    changed = client.patch(
        url, json={"events": ["session.qr", "message.status"], "url": receiver.url("/v2")}, headers=starter.headers
    ).get_json()["webhook"]
    assert changed["events"] == ["message.status", "session.qr"] and changed["url"] == receiver.url("/v2")
    paused = client.patch(url, json={"enabled": False}, headers=starter.headers).get_json()["webhook"]
    assert (paused["enabled"], paused["disabledReason"]) == (False, None)
    for body, code in (
        ({"events": []}, "INVALID_FIELD"),
        ({"events": ["message.sent"]}, "INVALID_EVENTS"),
        ({"enabled": "yes"}, "INVALID_FIELD"),
        ({"sessionId": "another"}, "INVALID_FIELD"),
    ):
        response = client.patch(url, json=body, headers=starter.headers)
        assert (response.status_code, response.get_json()["code"]) == (400, code), body

    client.patch(url, json={"enabled": True}, headers=starter.headers)
    client.post(f"{url}/test", headers=starter.headers)
    _settled(client, starter, created["id"])
    assert client.delete(url, headers=starter.headers).status_code == 200
    assert client.get(url, headers=starter.headers).status_code == 404
    assert client.get(f"{url}/deliveries", headers=starter.headers).status_code == 404
    assert client.get("/api/webhooks", headers=starter.headers).get_json()["total"] == 0


def test_bad_input_is_refused(client, runtime, starter, make_account, receiver):
    other_session = pair_session(client, make_account())
    cases = [
        ({"url": receiver.url(), "events": []}, 400, "INVALID_FIELD"),
        ({"url": receiver.url(), "events": "message.received"}, 400, "INVALID_FIELD"),
        ({"url": receiver.url(), "events": ["message.sent"]}, 400, "INVALID_EVENTS"),
        ({"url": receiver.url(), "sessionId": other_session}, 404, "SESSION_NOT_FOUND"),
        ({"url": receiver.url(), "sessionId": 5}, 400, "INVALID_FIELD"),
    ]
    for body, status, code in cases:
        response = client.post("/api/webhooks", json=body, headers=starter.headers)
        assert (response.status_code, response.get_json()["code"]) == (status, code), body
    assert client.post("/api/webhooks", headers=starter.headers).get_json()["code"] == "MISSING_BODY"


def test_webhooks_need_the_starter_plan(client, account, receiver):
    response = client.post("/api/webhooks", json={"url": receiver.url()}, headers=account.headers)
    body = response.get_json()
    assert response.status_code == 403
    assert (body["error"], body["code"]) == ("Feature not available on your plan", "FEATURE_NOT_AVAILABLE")


def test_a_delivery_is_reached_only_through_its_own_endpoint(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url())
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [delivery] = _settled(client, starter, created["id"])
    second = _create(client, starter, receiver.url("/second"))
    response = client.post(
        f"/api/webhooks/{second['id']}/deliveries/{delivery['id']}/redeliver", headers=starter.headers
    )
    assert (response.status_code, response.get_json()["code"]) == (404, "DELIVERY_NOT_FOUND")
    assert len(receiver.received) == 1


def test_api_keys_limited_to_sessions_and_test_keys(client, runtime, make_account, receiver):
    account = make_account(plan="growth")
    first, second = pair_session(client, account), pair_session(client, account, phone="919800000002")
    everywhere = _create(client, account, receiver.url("/all"))
    on_first = _create(client, account, receiver.url("/first"), sessionId=first)

    def key(**body) -> dict:
        response = client.post("/api/keys", json={"name": "k", **body}, headers=account.headers)
        return {"X-Api-Key": response.get_json()["key"]}

    limited = key(sessionIds=[first])
    assert [w["id"] for w in client.get("/api/webhooks", headers=limited).get_json()["webhooks"]] == [on_first["id"]]
    assert client.get(f"/api/webhooks/{on_first['id']}", headers=limited).status_code == 200
    for response in (
        client.get(f"/api/webhooks/{everywhere['id']}", headers=limited),
        client.post("/api/webhooks", json={"url": receiver.url()}, headers=limited),
        client.post("/api/webhooks", json={"url": receiver.url(), "sessionId": second}, headers=limited),
    ):
        assert (response.status_code, response.get_json()["code"]) == (403, "SESSION_NOT_ALLOWED")
    assert (
        client.post("/api/webhooks", json={"url": receiver.url(), "sessionId": first}, headers=limited).status_code
        == 201
    )

    test_key = key(mode="test")
    assert client.get("/api/webhooks", headers=test_key).get_json()["total"] == 3
    for method, path in (
        ("POST", "/api/webhooks"),
        ("PATCH", f"/api/webhooks/{everywhere['id']}"),
        ("DELETE", f"/api/webhooks/{everywhere['id']}"),
        ("POST", f"/api/webhooks/{everywhere['id']}/test"),
        ("POST", f"/api/webhooks/{everywhere['id']}/rotate-secret"),
    ):
        response = client.open(path, method=method, json={"url": receiver.url()}, headers=test_key)
        assert (response.status_code, response.get_json()["code"]) == (403, "LIVE_KEY_REQUIRED"), path
    assert client.get("/api/webhooks", headers=account.headers).get_json()["total"] == 3


def test_a_sessions_endpoints_are_deleted_with_it(client, starter, shop, receiver):
    on_shop = _create(client, starter, receiver.url("/shop"), sessionId=shop)
    everywhere = _create(client, starter, receiver.url("/all"))
    assert client.delete(f"/api/sessions/{shop}", headers=starter.headers).status_code == 200
    assert client.get(f"/api/webhooks/{on_shop['id']}", headers=starter.headers).status_code == 404
    assert [w["id"] for w in client.get("/api/webhooks", headers=starter.headers).get_json()["webhooks"]] == [
        everywhere["id"]
    ]
