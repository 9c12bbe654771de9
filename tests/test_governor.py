"""The send governor: its queue and pace rules on a controllable clock, and end to end
through HTTP, the engine host and the simulator (pacing, scheduling, auto-pause, restarts)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from sqlalchemy import func, select

from extensions import db, socketio
from models import Message
from roles.runtime import EmbeddedRuntime
from services.governor.queue import Decision, Pace, SendQueue
from tests.helpers import LOCAL_RECEIVERS, wait_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()


def _queue() -> SendQueue:
    return SendQueue(fakeredis.FakeRedis(), "s1")


def _drain(queue: SendQueue, pace: Pace, now: float, *, until: float | None = None, paired_at=None, extra=None):
    """Run the queue on a clock that jumps to whenever the governor says: [(time, id, lane)]."""
    rng, sent = random.Random(7), []
    while until is None or now < until:
        if extra:
            extra(len(sent), queue)
        decision = queue.take(pace, now, paired_at=paired_at)
        if decision.message_id is not None:
            sent.append((now, decision.message_id, decision.lane))
            queue.sent(decision.message_id, decision.lane, pace, now, rng=rng)
        elif decision.wait is None:
            break
        else:
            assert decision.wait > 0, decision
            now += decision.wait
    return sent


def test_two_batches_and_api_sends_interleave_and_never_break_the_gap():
    queue = _queue()
    pace = Pace(min_gap_seconds=5, jitter_seconds=2, per_minute=1000, per_day=100_000, warmup=())
    for i in range(100):
        queue.push(f"a{i}", lane="batch:a", floor_seconds=1)
        queue.push(f"b{i}", lane="batch:b", floor_seconds=8)  # this batch asked for an 8 s delay

    def api_sends(count: int, q: SendQueue) -> None:
        if count == 50:
            for i in range(3):
                q.push(f"api{i}", lane="api")

    sent = _drain(queue, pace, T0, extra=api_sends)
    ids = [message_id for _, message_id, _ in sent]
    assert sorted(ids) == sorted(
        [f"a{i}" for i in range(100)] + [f"b{i}" for i in range(100)] + ["api0", "api1", "api2"]
    )
    assert len(ids) == len(set(ids))  # nothing twice
    assert ids[:6] == ["a0", "b0", "a1", "b1", "a2", "b2"]  # the batches take turns
    # Each batch keeps its own order.
    assert [i for i in ids if i[0] == "a" and i[1:].isdigit()] == [f"a{i}" for i in range(100)]
    # API sends queued mid-way wait for a turn, not for a whole batch.
    assert max(ids.index(f"api{i}") for i in range(3)) < 60
    gaps = [(later[0] - earlier[0], earlier[2]) for earlier, later in zip(sent, sent[1:], strict=False)]
    assert min(gap for gap, _ in gaps) >= 5  # the pace's minimum gap, every time
    assert all(gap >= 8 for gap, lane in gaps if lane == "batch:b")  # the batch's delay is a floor
    assert max(gap for gap, lane in gaps if lane != "batch:b") <= 7  # jitter stays within its bound


def test_the_per_minute_ceiling_holds():
    queue = _queue()
    pace = Pace(min_gap_seconds=0, jitter_seconds=0, per_minute=5, per_day=100_000, warmup=())
    for i in range(12):
        queue.push(f"m{i}")
    times = [at for at, _, _ in _drain(queue, pace, T0)]
    assert len(times) == 12
    assert all(sum(1 for t in times if start <= t < start + 60) <= 5 for start in times)
    assert times[5] - times[0] >= 60


def test_quiet_hours_hold_messages_and_release_them_after():
    zone = ZoneInfo("Asia/Kolkata")
    pace = Pace(
        min_gap_seconds=5,
        jitter_seconds=0,
        per_minute=1000,
        per_day=100_000,
        warmup=(),
        quiet_start="21:00",
        quiet_end="08:00",
        timezone="Asia/Kolkata",
    )
    queue = _queue()
    start = datetime(2026, 11, 23, 20, 59, 50, tzinfo=zone).timestamp()
    for i in range(4):
        queue.push(f"m{i}")
    sent = _drain(queue, pace, start)
    local = [datetime.fromtimestamp(at, zone) for at, _, _ in sent]
    assert [message_id for _, message_id, _ in sent] == ["m0", "m1", "m2", "m3"]  # held, not dropped
    assert [t.strftime("%d %H:%M:%S") for t in local[:2]] == ["23 20:59:50", "23 20:59:55"]
    assert local[2] == datetime(2026, 11, 24, 8, 0, tzinfo=zone)  # released when quiet hours end
    assert local[3] == datetime(2026, 11, 24, 8, 0, 5, tzinfo=zone)
    assert queue.take(pace, datetime(2026, 11, 24, 23, 0, tzinfo=zone).timestamp()).reason == "empty"


def test_warm_up_caps_the_first_days_after_pairing():
    pace = Pace(min_gap_seconds=1, jitter_seconds=0, per_minute=1000, per_day=1000, warmup=(3, 5))
    paired = datetime.fromtimestamp(T0, UTC)
    queue = _queue()
    for i in range(12):
        queue.push(f"m{i}")
    decision = None
    sent = _drain(queue, pace, T0, paired_at=paired)
    by_day = {}
    for at, _, _ in sent:
        by_day.setdefault(datetime.fromtimestamp(at, UTC).date(), []).append(at)
    assert [len(day) for day in by_day.values()] == [3, 5, 4]  # day 1: 3, day 2: 5, then per_day
    assert datetime.fromtimestamp(by_day[sorted(by_day)[1]][0], UTC).time().isoformat() == "00:00:00"
    queue.push("late")
    decision = queue.take(pace, T0 + 10, paired_at=paired)
    assert decision.reason in ("warmup", "gap")


def test_a_held_message_goes_at_its_time_first_and_a_forgotten_one_never():
    queue = _queue()
    pace = Pace(min_gap_seconds=2, jitter_seconds=0, per_minute=1000, per_day=100_000, warmup=())
    queue.push("now1")
    queue.later("at-30", T0 + 30)
    queue.later("cancelled", T0 + 20)
    queue.forget("cancelled")
    for i in range(40):
        queue.push(f"bulk{i}", lane="batch:x")
    sent = _drain(queue, pace, T0)
    when = {message_id: at for at, message_id, _ in sent}
    assert "cancelled" not in when
    assert T0 + 30 <= when["at-30"] < T0 + 32  # due: it goes at the next free slot (within the gap)
    assert len(when) == 42


def test_the_per_minute_ceiling_counts_each_send_for_exactly_a_minute():
    queue = _queue()
    pace = Pace(min_gap_seconds=0, jitter_seconds=0, per_minute=3, per_day=100_000, warmup=())
    for i, at in enumerate((T0, T0 + 10, T0 + 20)):
        queue.push(f"m{i}")
        assert queue.take(pace, at).message_id == f"m{i}"
        queue.sent(f"m{i}", "api", pace, at)
    queue.push("m3")
    assert queue.take(pace, T0 + 59.999) == Decision(wait=pytest.approx(0.001, abs=1e-6), reason="per_minute")
    assert queue.blocked_until(pace, T0 + 59.999) == (T0 + 60, "per_minute")
    assert queue.sent_since(T0) == 3 and queue.sent_since(T0 + 0.001) == 2  # since a time: inclusive
    assert queue.take(pace, T0 + 60).message_id == "m3"  # a minute on, the first send no longer counts
    queue.sent("m3", "api", pace, T0 + 60)
    # A lower ceiling set meanwhile counts from the latest sends back.
    lower = Pace(min_gap_seconds=0, jitter_seconds=0, per_minute=2, per_day=100_000, warmup=())
    queue.push("m4")
    assert queue.blocked_until(lower, T0 + 61) == (T0 + 80, "per_minute")
    assert queue.sent_since(T0 + 61 - 60) == 3


def test_today_is_counted_from_midnight_in_the_pace_time_zone():
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+05:45: its midnight is 18:15 UTC
    pace = Pace(min_gap_seconds=0.5, jitter_seconds=0, per_minute=1000, per_day=3, warmup=(), timezone="Asia/Kathmandu")
    queue = _queue()
    for i in range(5):
        queue.push(f"m{i}")
    midnight = datetime(2026, 11, 24, tzinfo=zone).timestamp()
    sent = _drain(queue, pace, midnight - 2, until=midnight - 0.25)
    assert queue.sent_today(pace, midnight - 0.25) == 3
    assert queue.take(pace, midnight - 0.25) == Decision(wait=0.25, reason="per_day")  # until midnight exactly
    sent += _drain(queue, pace, midnight)
    # Three before midnight (the day's ceiling), the rest from midnight on, the next day's.
    assert [at - midnight for at, _, _ in sent] == [-2, -1.5, -1, 0, 0.5]
    assert queue.sent_today(pace, midnight + 5) == 2
    assert queue.sent_since(midnight) == 2
    # The time zone changes: the same sends as seen from UTC, whose day holds all five...
    utc = Pace(min_gap_seconds=1, jitter_seconds=0, per_minute=1000, per_day=6, warmup=())
    assert queue.sent_today(utc, midnight + 5) == 5
    queue.push_many(["m5", "m6"])
    assert queue.take(utc, midnight + 600).message_id == "m5"
    queue.sent("m5", "api", utc, midnight + 600)
    assert queue.take(utc, midnight + 601).reason == "per_day"
    # ...and back (minutes later): Kathmandu's day holds three, its ceiling.
    assert queue.sent_today(pace, midnight + 601) == 3
    assert queue.take(pace, midnight + 601).reason == "per_day"
    assert queue.sent_since(midnight) == 3


def test_a_day_of_23_hours_ends_at_the_next_midnight():
    zone = ZoneInfo("America/New_York")  # 8 March 2026: the clocks go from 02:00 to 03:00
    pace = Pace(min_gap_seconds=1, jitter_seconds=0, per_minute=1000, per_day=2, warmup=(), timezone=zone.key)
    queue = _queue()
    for i in range(3):
        queue.push(f"m{i}")
    sent = _drain(queue, pace, datetime(2026, 3, 8, 0, 30, tzinfo=zone).timestamp())
    assert datetime.fromtimestamp(sent[2][0], zone) == datetime(2026, 3, 9, tzinfo=zone)
    assert sent[2][0] - sent[0][0] == 22.5 * 3600


def test_a_queue_from_before_the_counters_keeps_its_counts():
    connection = fakeredis.FakeRedis()
    old = "wagate:sendq:s1:sent"  # how sends were kept: each one, by time, for two days
    for i in range(30):
        at = T0 - 30 * 3600 + i * 3000  # one every 50 minutes since yesterday
        connection.zadd(old, {f"{at:.6f}:x{i}": at})
    for i in range(5):
        connection.zadd(old, {f"{T0 + i:.6f}:y{i}": T0 + i})
    queue = SendQueue(connection, "s1")
    pace = Pace(min_gap_seconds=0, jitter_seconds=0, per_minute=5, per_day=1000, warmup=())
    queue.push("next")
    assert queue.take(pace, T0 + 10) == Decision(wait=50, reason="per_minute")
    assert not connection.exists(old)
    midnight = datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    earlier_today = sum(1 for i in range(30) if T0 - 30 * 3600 + i * 3000 >= midnight)
    assert queue.sent_today(pace, T0 + 10) == earlier_today + 5
    assert queue.sent_since(T0 - 60) == 5


def test_many_messages_are_queued_at_once_in_order_and_once():
    queue = _queue()
    pace = Pace(min_gap_seconds=1, jitter_seconds=0, per_minute=1000, per_day=100_000, warmup=())
    assert queue.push_many([f"a{i}" for i in range(5)], lane="batch:a", floor_seconds=3) == 5
    assert queue.push_many(["a1", "a5", "a5"], lane="batch:a", floor_seconds=3) == 1
    assert queue.push_many([]) == 0
    assert queue.push("api0") is True and queue.push("api0") is False
    sent = _drain(queue, pace, T0)
    assert [message_id for _, message_id, _ in sent] == ["a0", "api0", "a1", "a2", "a3", "a4", "a5"]
    assert sent[3][0] - sent[2][0] == 3  # the batch's floor


def test_outcomes_recorded_together_read_as_if_one_by_one():
    one_by_one, together = _queue(), SendQueue(fakeredis.FakeRedis(), "s2")
    codes = [None, "UNREACHABLE", None, "NUMBER_NOT_ON_WHATSAPP", None]
    for code in codes:
        expected = one_by_one.outcome(code, 4)
    windows = together.outcome_many(codes, 4)
    assert windows[-1] == expected == ["ok", "NUMBER_NOT_ON_WHATSAPP", "ok", "UNREACHABLE"]
    assert windows[:2] == [["ok"], ["UNREACHABLE", "ok"]]  # as they stood after the first two


# -- end to end ----------------------------------------------------------------------------

CONTACT = "919811112222"


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS | {"GOVERNOR_MIN_SAMPLE": 4, "GOVERNOR_WINDOW": 10}


@pytest.fixture
def shop_owner(starter):
    return starter


def _send(client, account, session_id, **body):
    return client.post(f"/api/sessions/{session_id}/send", json={"to": CONTACT, **body}, headers=account.headers)


def test_sends_through_http_keep_the_sessions_gap(client, starter, shop, runtime):
    changed = client.put(
        f"/api/sessions/{shop}/pace", json={"minGapSeconds": 0.6, "jitterSeconds": 0}, headers=starter.headers
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["pace"]["minGapSeconds"] == 0.6
    answers = [_send(client, starter, shop, message=f"Order {i} shipped") for i in range(4)]
    assert [answer.status_code for answer in answers] == [200] * 4  # each waits its turn, within SEND_WAIT_SECONDS
    # The send line notes a send in the queue's record just after the message is marked sent.
    view = wait_for(
        lambda: (
            (v := client.get(f"/api/sessions/{shop}/pace", headers=starter.headers).get_json())["queue"][
                "sentLastMinute"
            ]
            == 4
            and v
        ),
        message="the fourth send in the queue's record",
    )
    assert view["queue"]["depth"] == 0
    outbox = runtime.engine_host.engine.outbox(shop)
    times = [datetime.fromisoformat(entry["at"]).timestamp() for entry in outbox]
    assert [entry["text"] for entry in outbox] == [f"Order {i} shipped" for i in range(4)]
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.6


def test_bad_pace_settings_are_refused(client, starter, shop):
    url = f"/api/sessions/{shop}/pace"
    for body in ({"minGapSeconds": -1}, {"perDay": 0}, {"timezone": "Mars/Olympus"}, {"quietStart": "25:00"}, {"x": 1}):
        answer = client.put(url, json=body, headers=starter.headers)
        assert (answer.status_code, answer.get_json()["code"]) == (400, "INVALID_FIELD"), body


def test_a_scheduled_message_goes_at_its_time_and_a_cancelled_one_never(client, starter, shop, runtime):
    at = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = _send(client, starter, shop, message="Happy birthday!", sendAt=at.isoformat())
    assert scheduled.status_code == 202, scheduled.get_json()
    assert scheduled.get_json()["status"] == "scheduled"
    cancelled = _send(client, starter, shop, message="Never mind", sendAt=at.isoformat())
    listed = client.get("/api/messages/scheduled", headers=starter.headers).get_json()
    assert [m["message"] for m in listed["messages"]] == ["Happy birthday!", "Never mind"]
    answer = client.post(f"/api/messages/{cancelled.get_json()['messageId']}/cancel", headers=starter.headers)
    assert (answer.status_code, answer.get_json()["status"]) == (200, "cancelled")

    [entry] = wait_for(lambda: runtime.engine_host.engine.outbox(shop), timeout=10)
    assert entry["text"] == "Happy birthday!"
    assert abs(datetime.fromisoformat(entry["at"]) - at) < timedelta(seconds=1)
    time.sleep(1.0)
    assert len(runtime.engine_host.engine.outbox(shop)) == 1  # the cancelled one never went
    again = client.post(f"/api/messages/{cancelled.get_json()['messageId']}/cancel", headers=starter.headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "NOT_SCHEDULED")


def test_a_rescheduled_message_waits_for_its_new_time(client, starter, shop, runtime):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    message_id = _send(client, starter, shop, message="Reminder", sendAt=soon.isoformat()).get_json()["messageId"]
    later = datetime.now(UTC) + timedelta(seconds=3)
    moved = client.patch(f"/api/messages/{message_id}", json={"sendAt": later.isoformat()}, headers=starter.headers)
    assert moved.status_code == 200 and moved.get_json()["sendAt"].startswith(later.isoformat()[:19])
    time.sleep(1.8)
    assert runtime.engine_host.engine.outbox(shop) == []
    [entry] = wait_for(lambda: runtime.engine_host.engine.outbox(shop), timeout=10)
    assert abs(datetime.fromisoformat(entry["at"]) - later) < timedelta(seconds=1)


@pytest.mark.parametrize(
    "send_at", ["tomorrow", "2026-12-01T09:30:00", "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z", 12]
)
def test_bad_send_times_are_refused(client, starter, shop, send_at):
    answer = _send(client, starter, shop, message="x", sendAt=send_at)
    assert (answer.status_code, answer.get_json()["code"]) == (400, "INVALID_SEND_AT")


def test_a_scheduled_message_survives_an_engine_host_restart(app, client, starter, shop, runtime):
    at = datetime.now(UTC) + timedelta(seconds=2)
    _send(client, starter, shop, message="After the restart", sendAt=at.isoformat())
    runtime.stop()
    restarted = EmbeddedRuntime(app)
    restarted.start()
    try:
        [entry] = wait_for(lambda: restarted.engine_host.engine.outbox(shop), timeout=10)
        assert entry["text"] == "After the restart"
        time.sleep(1.5)
        assert len(restarted.engine_host.engine.outbox(shop)) == 1
    finally:
        restarted.stop()
        runtime.start = lambda: None


def test_unknown_recipients_pause_the_session_with_an_event_and_a_webhook(
    app,
    client,
    starter,
    shop,
    receiver,
    runtime,
):
    client.post("/api/webhooks", json={"url": receiver.url(), "events": ["session.paused"]}, headers=starter.headers)
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": starter.token})
    for i in range(4):  # numbers ending in 0000 are not on WhatsApp
        answer = _send(client, starter, shop, to=f"9198111{i}0000", message="Special offer!")
        assert answer.get_json()["code"] == "NUMBER_NOT_ON_WHATSAPP"
    paused = wait_for(lambda: [p["args"][0] for p in socket.get_received() if p["name"] == "session_paused"])
    assert paused[0]["sessionId"] == shop and "not on WhatsApp" in paused[0]["reason"]
    wait_for(lambda: receiver.succeeded, message="the session.paused webhook")
    body = json.loads(receiver.succeeded[0].body)
    assert (body["event"], body["data"]["sessionId"]) == ("session.paused", shop)

    held = _send(client, starter, shop, message="Your order shipped")
    assert held.status_code == 202  # accepted and kept, not sent while paused
    view = client.get(f"/api/sessions/{shop}/pace", headers=starter.headers).get_json()
    assert view["paused"] is True and view["queue"]["depth"] == 1
    time.sleep(0.5)
    assert runtime.engine_host.engine.outbox(shop) == []

    resumed = client.post(f"/api/sessions/{shop}/resume", headers=starter.headers)
    assert resumed.status_code == 200 and resumed.get_json()["paused"] is False
    [entry] = wait_for(lambda: runtime.engine_host.engine.outbox(shop))
    assert entry["text"] == "Your order shipped"
    again = client.post(f"/api/sessions/{shop}/resume", headers=starter.headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "NOT_PAUSED")


def test_whatsapps_warnings_pause_sending(app, client, starter, shop):
    from engines import EngineEvent, EngineEventKind
    from roles.engine_events import engine_event_apply

    with app.app_context():
        event = EngineEvent(
            EngineEventKind.ERROR, shop, {"reason": "Temporarily banned for 1h", "signal": "temporary_ban"}
        )
        engine_event_apply(event)
    view = client.get(f"/api/sessions/{shop}/pace", headers=starter.headers).get_json()
    assert view["paused"] is True and "temporarily banned" in view["pausedReason"]


def test_another_user_cannot_see_or_change_a_sessions_pace_or_schedule(client, starter, shop, make_account):
    stranger = make_account()
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    message_id = _send(client, starter, shop, message="Later", sendAt=at).get_json()["messageId"]
    assert client.get(f"/api/sessions/{shop}/pace", headers=stranger.headers).status_code == 404
    assert client.put(f"/api/sessions/{shop}/pace", json={}, headers=stranger.headers).status_code == 404
    assert client.post(f"/api/sessions/{shop}/resume", headers=stranger.headers).status_code == 404
    assert client.post(f"/api/messages/{message_id}/cancel", headers=stranger.headers).status_code == 404
    assert client.patch(f"/api/messages/{message_id}", json={"sendAt": at}, headers=stranger.headers).status_code == 404
    assert client.get("/api/messages/scheduled", headers=stranger.headers).get_json()["count"] == 0


def test_a_scheduled_batch_starts_at_its_time_and_a_cancelled_one_never(client, growth_session, runtime):
    account, session_id = growth_session
    at = datetime.now(UTC) + timedelta(seconds=3)
    body = {"contacts": ["919811110001", "919811110002"], "message": "Sale starts now", "delay": 0}
    first = client.post("/api/whatsapp/bulk-send", json=body | {"sendAt": at.isoformat()}, headers=account.headers)
    assert first.status_code == 202, first.get_json()
    assert (first.get_json()["status"], first.get_json()["pending"]) == ("scheduled", 2)
    second = client.post("/api/whatsapp/bulk-send", json=body | {"sendAt": at.isoformat()}, headers=account.headers)
    cancelled = client.post(f"/api/whatsapp/bulk-send/{second.get_json()['batchId']}/cancel", headers=account.headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert {r["status"] for r in cancelled.get_json()["results"]} == {"Cancelled"}
    # A second before its time however long the requests took (on a busy machine, seconds).
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds() - 1.0))
    assert runtime.engine_host.engine.outbox(session_id) == []  # not before its time

    outbox = wait_for(lambda: (box := runtime.engine_host.engine.outbox(session_id)) and len(box) == 2 and box)
    assert [entry["to"] for entry in outbox] == ["919811110001", "919811110002"]
    assert datetime.fromisoformat(outbox[0]["at"]) >= at
    time.sleep(0.5)
    assert len(runtime.engine_host.engine.outbox(session_id)) == 2  # the cancelled batch sent nothing
    started = client.post(f"/api/whatsapp/bulk-send/{first.get_json()['batchId']}/cancel", headers=account.headers)
    assert (started.status_code, started.get_json()["code"]) == (409, "NOT_SCHEDULED")


def test_typing_is_shown_before_each_message_when_the_pace_asks(client, starter, shop, runtime):
    client.put(f"/api/sessions/{shop}/pace", json={"typing": True}, headers=starter.headers)
    answer = _send(client, starter, shop, message="Hi!")
    assert answer.status_code == 200
    [shown] = runtime.engine_host.engine.presence_log(shop)
    [sent] = runtime.engine_host.engine.outbox(shop)
    assert (shown["state"], shown["chat"]) == ("typing", CONTACT)
    assert (datetime.fromisoformat(sent["at"]) - datetime.fromisoformat(shown["at"])).total_seconds() >= 1.0


def test_a_send_that_breaks_unexpectedly_stays_queued_and_goes_later(app, client, starter, shop, runtime, monkeypatch):
    host = runtime.engine_host
    real_send, calls = host.message_send, []

    def breaks_once(message_id: str):
        calls.append(message_id)
        if len(calls) == 1:
            raise RuntimeError("a bug between the queue and the engine")
        return real_send(message_id)

    monkeypatch.setattr(host, "message_send", breaks_once)
    monkeypatch.setattr("roles.engine_host.BROKEN_SEND_RETRY_SECONDS", 0.5)
    answer = _send(client, starter, shop, message="Still arrives")
    assert answer.status_code in (200, 202)
    [entry] = wait_for(lambda: runtime.engine_host.engine.outbox(shop), timeout=15)
    assert entry["text"] == "Still arrives" and len(calls) == 2


@pytest.mark.parametrize("config_overrides", [LOCAL_RECEIVERS | {"GOVERNOR_MAX_COLD_PER_DAY": 3}])
def test_too_many_messages_to_people_who_never_wrote_pause_the_session(
    app, client, starter, shop, runtime, monkeypatch
):
    from services.governor import pace

    counted = []

    def cold_messages_today(session):
        counted.append(real(session))
        return counted[-1]

    real = pace.cold_messages_today
    monkeypatch.setattr(pace, "cold_messages_today", cold_messages_today)
    friend = "919822220001"
    inbound = {"from": friend, "message": "Hi!"}
    client.post(f"/api/simulator/sessions/{shop}/inbound", json=inbound, headers=starter.headers)
    with app.app_context():
        wait_for(lambda: db.session.scalar(select(func.count(Message.id)).where(Message.direction == "inbound")))
    strangers = [f"91982222010{i}" for i in range(4)]
    for to in (friend, *strangers[:3], friend, strangers[3]):
        assert _send(client, starter, shop, to=to, message="Hello").status_code == 200
    view = wait_for(
        lambda: (v := client.get(f"/api/sessions/{shop}/pace", headers=starter.headers).get_json())["paused"] and v
    )
    assert view["pausedReason"].startswith("4 messages today went to people who never wrote")
    # Each send adds one at most: the database is asked again only when the limit is in reach.
    assert counted == [0, 3, 4]
