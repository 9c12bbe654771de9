"""Webhooks through outages and load: a receiver down during a burst, Redis losing its data,
a busy default queue. A real receiver on loopback, the embedded runtime, a shortened ladder."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from flask import Flask

from extensions import queues
from jobs.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE
from services.webhooks.delivery import webhook_deliveries_resume
from tests.helpers import LOCAL_RECEIVERS, wait_for
from tests.receiver import HANG, Received, Receiver

BURST = 51
DOWN_SECONDS = 25
# The ladder shortened from minutes to seconds: a retry 2 s after each failure, with enough
# steps to outlast the outage.
LADDER = [2] * 20


@pytest.fixture
def shop_owner(starter):
    return starter


def _create(client, account, url: str) -> dict:
    response = client.post("/api/webhooks", json={"url": url, "events": ["message.received"]}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _webhook(client, account, webhook_id: str) -> dict:
    return client.get(f"/api/webhooks/{webhook_id}", headers=account.headers).get_json()["webhook"]


def _deliveries(client, account, webhook_id: str) -> list[dict]:
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries?limit=200", headers=account.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["deliveries"]


def _succeeded(client, account, webhook_id: str, count: int) -> list[dict]:
    """The endpoint's deliveries, once all `count` are logged as succeeded."""

    def check() -> list[dict] | None:
        deliveries = _deliveries(client, account, webhook_id)
        done = len(deliveries) == count and all(d["status"] == "succeeded" for d in deliveries)
        return deliveries if done else None

    return wait_for(check, message=f"{count} deliveries logged as succeeded")


def _inbound(client, account, session_id: str, number: int) -> None:
    response = client.post(
        f"/api/simulator/sessions/{session_id}/inbound",
        json={"from": f"4479110{number:05d}", "message": f"Order {number}"},
        headers=account.headers,
    )
    assert response.status_code in (200, 202), response.get_json()


def _by_delivery(receiver: Receiver) -> dict[str, list[Received]]:
    requests: dict[str, list[Received]] = defaultdict(list)
    for request in receiver.received:
        requests[request.delivery_id].append(request)
    return requests


def _lateness(receiver: Receiver, ladder: list[int]) -> list[float]:
    """How much later than the ladder said each retry reached the receiver, in seconds."""
    late = []
    for requests in _by_delivery(receiver).values():
        for before, after in zip(requests, requests[1:], strict=False):
            late.append(after.arrived - before.arrived - ladder[before.attempt - 1])
    return late


def _queued(app: Flask, name: str) -> int:
    with app.app_context():
        return queues.queue(name).count


def _each_once(receiver: Receiver, deliveries: list[dict]) -> None:
    """Every delivery reached the receiver as attempts 1, 2, ... each once, the last one its
    only success, and the log says the same."""
    requests = _by_delivery(receiver)
    assert set(requests) == {delivery["id"] for delivery in deliveries}
    for delivery in deliveries:
        arrived = requests[delivery["id"]]
        assert [request.attempt for request in arrived] == list(range(1, len(arrived) + 1))
        assert [request.answered == 200 for request in arrived] == [False] * (len(arrived) - 1) + [True]
        assert (delivery["status"], delivery["attempts"]) == ("succeeded", len(arrived))


@pytest.mark.parametrize(
    "config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": LADDER, "WEBHOOK_WORKERS": 4}]
)
def test_a_receiver_down_for_25_s_during_a_burst_gets_every_event_once_afterwards(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url())
    receiver.down(DOWN_SECONDS)
    for number in range(BURST):
        _inbound(client, starter, shop, number)

    wait_for(
        lambda: len(receiver.succeeded) >= BURST,
        timeout=DOWN_SECONDS + 15,
        message=f"{BURST} deliveries after the outage",
    )
    _each_once(receiver, _succeeded(client, starter, created["id"], BURST))
    assert sorted(json.loads(r.body)["data"]["message"] for r in receiver.succeeded) == sorted(
        f"Order {number}" for number in range(BURST)
    )
    # Far more than 25 attempts failed in a row, but for seconds, not a day: still enabled.
    failed = [r for r in receiver.received if r.answered == 503]
    assert len(failed) >= 2 * BURST
    webhook = _webhook(client, starter, created["id"])
    assert (webhook["enabled"], webhook["disabledReason"], webhook["failingSince"]) == (True, None, None)
    # Each retry came within a few seconds of when the ladder said.
    assert max(_lateness(receiver, LADDER)) < 3


@pytest.mark.parametrize(
    "config_overrides",
    [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [3, 1], "WEBHOOK_WORKERS": 1, "WEBHOOK_TIMEOUT_SECONDS": 10}],
)
def test_deliveries_come_back_from_the_database_after_redis_lost_its_data(app, client, starter, receiver, shop):
    created = _create(client, starter, receiver.url())
    # The first attempt fails (its retry is due 3 s later), the second hangs and holds the
    # only webhook worker, so three more wait on the queue (the endpoint's four slots) and
    # three in the database; then everything succeeds.
    receiver.answer(503, HANG)
    for number in range(8):
        _inbound(client, starter, shop, number)
    wait_for(lambda: len(receiver.received) == 2 and _queued(app, WEBHOOK_QUEUE) == 3, message="three jobs queued")

    app.extensions["wagate.redis"].flushall()
    assert _queued(app, WEBHOOK_QUEUE) == 0
    # The workers' pump notices the loss and lines the three up again from the database.
    wait_for(lambda: _queued(app, WEBHOOK_QUEUE) == 3, timeout=3, message="the lost jobs lined up again")
    # A relay that noticed it too lines them up once more: two jobs each, one attempt each.
    with app.app_context():
        assert webhook_deliveries_resume() == 3
    assert _queued(app, WEBHOOK_QUEUE) == 6

    receiver.release.set()  # the hanging attempt ends without an answer: it failed
    wait_for(lambda: len(receiver.succeeded) >= 8, timeout=15, message="every delivery")
    _each_once(receiver, _succeeded(client, starter, created["id"], 8))
    assert sorted(len(requests) for requests in _by_delivery(receiver).values()) == [1] * 6 + [2, 2]
    # The retry due after the loss was in the database only, and came on time.
    assert max(_lateness(receiver, [3, 1])) < 2


def idle(seconds: float) -> None:
    """A default-queue job that keeps its worker busy."""
    time.sleep(seconds)


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [1, 1]}])
def test_attempts_keep_to_time_while_the_default_queue_is_busy(app, client, starter, receiver, shop):
    created = _create(client, starter, receiver.url())
    with app.app_context():
        for _ in range(8):
            queues.queue(DEFAULT_QUEUE).enqueue(idle, 1)
    receiver.answer(503, 503)
    started = time.monotonic()
    _inbound(client, starter, shop, 1)

    wait_for(lambda: receiver.succeeded, timeout=10, message="the third attempt")
    assert _queued(app, DEFAULT_QUEUE) > 0  # the default queue was busy all along
    _each_once(receiver, _succeeded(client, starter, created["id"], 1))
    assert len(receiver.received) == 3
    assert receiver.received[0].arrived - started < 2
    assert max(_lateness(receiver, [1, 1])) < 1.5


@pytest.mark.parametrize(
    "config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_WORKERS": 6, "WEBHOOK_ENDPOINT_CONCURRENCY": 2}]
)
def test_an_endpoint_gets_a_few_attempts_at_once_and_a_slow_one_leaves_the_others_theirs(
    client, starter, receiver, shop
):
    slow = _create(client, starter, receiver.url())
    other = Receiver()
    try:
        _create(client, starter, other.url())
        receiver.answer(*[HANG] * 6)
        for number in range(6):
            _inbound(client, starter, shop, number)
        # The slow endpoint has its two oldest deliveries under way and the rest waiting; the
        # other endpoint gets all of its own meanwhile, from the workers left.
        wait_for(lambda: len(other.succeeded) == 6, message="the other endpoint's deliveries")
        wait_for(lambda: len(receiver.received) == 2, message="the slow endpoint's first two")
        assert [json.loads(r.body)["data"]["message"] for r in receiver.received] == ["Order 0", "Order 1"]

        receiver.release.set()  # those two end without an answer; the rest are answered
        wait_for(lambda: len(receiver.succeeded) == 6, timeout=15, message="the slow endpoint's deliveries")
        _each_once(receiver, _succeeded(client, starter, slow["id"], 6))
        assert receiver.most_at_once == 2
        assert other.most_at_once <= 2
    finally:
        other.close()
