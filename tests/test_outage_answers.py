"""What a client hears while the database or Redis is down: 503 with Retry-After, in the
shape of the dialect it speaks, and nothing stored; the dashboard's browsers get an HTML
page, Socket.IO clients a refusal. The outages are the Redis stand-in's connection errors
and a database whose connections are dead (tests/helpers.py); tests/test_outages.py has the
real servers stopped and killed."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time

import pytest
import redis
from pydantic import TypeAdapter
from redis.sentinel import MasterNotFoundError
from rq import Queue
from sqlalchemy import exc as sql_errors
from sqlalchemy import func, select

from blueprints.aulm.contract import aulm
from blueprints.contract.native import native
from blueprints.selfhosted.contract import selfhosted
from blueprints.wallm.contract import wallm
from blueprints.wamux.contract import wamux
from extensions import db, queues, socketio
from models import Message, MessageStatus, SessionStatus, WaSession
from services.governor.pace import session_pause
from services.governor.queue import SendQueue, send_queues_holding
from services.platform.outages import outage_kind
from tests.dashboard import DashboardUser
from tests.helpers import database_down, pair_session, redis_down

RETRY_AFTER = "5"


def _key(client, account, **body) -> str:
    response = client.post("/api/keys", json={"name": "outage", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["key"]


def _messages(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message))


# What each dialect's client sends, and how its 503 reads.
def _native(client, key, session_id):
    return client.post(
        f"/api/sessions/{session_id}/send",
        json={"to": "14155551234", "message": "Hi"},
        headers={"Authorization": f"Bearer {key}"},
    )


def _aulm(client, key, session_id):
    body = {"session_id": session_id, "to": "+14155551234", "body": "Hi"}
    return client.post("/v1/messages/send-text", json=body, headers={"Authorization": f"Bearer {key}"})


def _wallm(client, key, session_id):
    body = {"to": "+14155551234", "text": "Hi"}
    return client.post(f"/v1/sessions/{session_id}/messages/text", json=body, headers={"X-Api-Key": key})


def _wamux(client, key, session_id):
    body = {"to": "+14155551234", "message": "Hi", "sessionId": session_id}
    return client.post("/api/v1/messages", json=body, headers={"Authorization": f"Bearer {key}"})


def _selfhosted(client, key, session_id):
    return client.post(
        f"/api/v1/send-message?sessionId={session_id}",
        json={"to": "14155551234", "text": "Hi"},
        headers={"X-API-Token": key},
    )


def _code(dialect: str, body: dict) -> str:
    """The code a dialect's error body carries."""
    if dialect == "aulm":
        return body["error"]["code"]
    if dialect == "selfhosted":
        return body["error"]["reason"]
    return body["code"]


DIALECTS = {
    "native": (_native, native),
    "aulm": (_aulm, aulm),
    "wallm": (_wallm, wallm),
    "wamux": (_wamux, wamux),
    "selfhosted": (_selfhosted, selfhosted),
}


@pytest.fixture
def owner(make_account):
    """A Growth account: every dialect's routes are open to it."""
    return make_account(plan="growth")


@pytest.fixture
def connected(app, owner) -> str:
    """A session of `owner` the database calls connected (no engine host runs here: the
    requests are refused before anything would reach one)."""
    with app.app_context():
        session = WaSession(user_id=owner.user_id, name="Shop", status=SessionStatus.CONNECTED, paired=True)
        session.phone = "919876543210"
        db.session.add(session)
        db.session.commit()
        return session.id


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("down, code", [(redis_down, "QUEUE_UNAVAILABLE"), (database_down, "DATABASE_UNAVAILABLE")])
def test_a_send_during_an_outage_is_503_in_the_dialects_shape_and_stores_nothing(
    app, client, owner, connected, dialect, down, code
):
    send, contract = DIALECTS[dialect]
    key = _key(client, owner)
    before = _messages(app)
    with down(app):
        response = send(client, key, connected)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert response.headers["X-Request-ID"]
    body = response.get_json()
    TypeAdapter(contract.error_schema).validate_python(body)  # the dialect's documented error body
    if dialect == "aulm":
        assert body["error"]["code"] == "service_unavailable", body
    else:
        assert _code(dialect, body) == code, body
    assert _messages(app) == before


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_operation_documents_the_503(client, dialect):
    contract = DIALECTS[dialect][1]
    document = contract.document(client.application)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "503" in operation["responses"], (path, method)


def test_reads_and_logins_during_a_database_outage_are_503(app, client, account):
    with database_down(app):
        listed = client.get("/api/sessions", headers=account.headers)
        login = client.post("/api/login", json={"email": account.email, "password": account.password})
    for response in (listed, login):
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
        assert response.headers["Retry-After"] == RETRY_AFTER
    assert client.get("/api/sessions", headers=account.headers).status_code == 200


def test_a_browser_gets_an_html_page_during_a_database_outage(app, client, account):
    DashboardUser(client, account)
    with database_down(app):
        page = client.get("/sessions", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.headers["Retry-After"] == RETRY_AFTER
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "503 · Service unavailable" in html
    assert "The database is unreachable" in html
    assert client.get("/sessions").status_code == 200  # and it is logged in still


def test_socketio_refuses_a_client_during_a_database_outage_and_takes_it_after(app, client, account):
    with database_down(app):
        refused = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    assert not refused.is_connected()
    accepted = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    assert accepted.is_connected()
    accepted.disconnect()


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_STORAGE_URI": "stand-in://"}])
def test_rate_limits_count_in_memory_while_redis_is_down(app, client, account):
    """The limits live in Redis; an outage of Redis must not fail requests that need none."""
    assert client.get("/api/sessions", headers=account.headers).headers["X-RateLimit-Remaining"]
    with redis_down(app):
        during = [client.get("/api/sessions", headers=account.headers) for _ in range(3)]
    assert [response.status_code for response in during] == [200, 200, 200]
    remaining = [int(response.headers["X-RateLimit-Remaining"]) for response in during]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]


def _wrapped(original: Exception) -> sql_errors.OperationalError:
    return sql_errors.OperationalError("SELECT 1", {}, original)


def test_what_counts_as_an_outage():
    assert outage_kind(redis.exceptions.ConnectionError("refused")) == "queue"
    assert outage_kind(redis.exceptions.BusyLoadingError("loading")) == "queue"
    assert outage_kind(redis.exceptions.TimeoutError("timed out")) == "queue"
    assert outage_kind(redis.exceptions.ReadOnlyError("replica")) == "queue"
    assert outage_kind(MasterNotFoundError("No master found for 'wagate'")) == "queue"  # a failover
    assert outage_kind(redis.exceptions.ResponseError("WRONGTYPE")) is None
    assert outage_kind(_wrapped(sqlite3.OperationalError("database is locked"))) == "database"
    assert outage_kind(_wrapped(sqlite3.OperationalError("no such table: messages"))) is None  # a bug
    assert outage_kind(sql_errors.TimeoutError("QueuePool limit reached")) == "database"
    invalidated = sql_errors.DBAPIError("SELECT 1", {}, Exception("server closed the connection"), False, True)
    assert outage_kind(invalidated) == "database"
    assert outage_kind(sql_errors.IntegrityError("INSERT", {}, Exception("duplicate key"))) is None
    assert outage_kind(ValueError("a bug")) is None
    # An error raised while handling an outage (a session left needing its rollback) is one.
    try:
        try:
            raise redis.exceptions.ConnectionError("refused")
        except redis.exceptions.ConnectionError:
            raise sql_errors.PendingRollbackError("rollback first") from None
    except sql_errors.PendingRollbackError as error:
        assert outage_kind(error) == "queue"


# -- stored, then Redis or the database fails: the answer follows the record ----------------------


def _dropped(self, *args, **kwargs):
    raise redis.exceptions.ConnectionError("Connection reset by peer")


def _send(client, account, session_id: str):
    body = {"to": "919812345678", "message": "Hi"}
    return client.post(f"/api/sessions/{session_id}/send", json=body, headers=account.headers)


def test_a_send_redis_cannot_take_after_its_commit_is_accepted_at_once(
    app, client, runtime, shop, account, monkeypatch
):
    monkeypatch.setattr(SendQueue, "push_many", _dropped)  # the hand-off, after the commit
    started = time.monotonic()
    response = _send(client, account, shop)
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "queued"
    assert elapsed < 2  # not the SEND_WAIT_SECONDS nothing would answer in
    assert response.headers["X-RateLimit-Remaining"]  # the quota counted the stored send
    with app.app_context():
        stored = db.session.get(Message, response.get_json()["messageId"])
        assert stored.status == MessageStatus.QUEUED and stored.dispatched_at is not None
        assert send_queues_holding(queues.connection, [(shop, stored.id)]) == set()  # for the relay


@pytest.mark.parametrize("config_overrides", [{"BULK_WAIT_SECONDS": 30.0}])
def test_a_batch_redis_cannot_start_after_its_commit_is_accepted_at_once(
    app, client, runtime, make_account, monkeypatch
):
    account = make_account(plan="growth")
    enqueue = Queue.enqueue

    def dispatch_dropped(self, func, *args, **kwargs):
        if kwargs.get("job_id", "").startswith("dispatch-"):
            _dropped(self)
        return enqueue(self, func, *args, **kwargs)

    session_id = pair_session(client, account)
    monkeypatch.setattr(Queue, "enqueue", dispatch_dropped)
    started = time.monotonic()
    contacts = ["919850000001", "919850000002"]
    response = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "Hi", "delay": 0}, headers=account.headers
    )
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    assert response.status_code == 202, response.get_json()
    assert elapsed < 2  # not BULK_WAIT_SECONDS for a dispatch that has not started
    body = response.get_json()
    assert (body["total"], body["pending"]) == (2, 2)
    with app.app_context():
        stored = db.session.scalars(select(Message.phone).where(Message.session_id == session_id)).all()
    assert sorted(stored) == contacts


@pytest.mark.parametrize("config_overrides", [{"SEND_WAIT_SECONDS": 3.0}])
def test_a_send_waiting_when_the_database_goes_down_is_answered_as_stored(app, client, runtime, shop, account):
    with app.app_context():
        session_pause(db.session.get(WaSession, shop), "held for the test")

    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")

    def outage() -> None:
        """The database goes away once the send is stored, while its request waits."""
        with contextlib.closing(sqlite3.connect(database)) as connection:
            while not connection.execute("SELECT count(*) FROM messages").fetchone()[0]:
                time.sleep(0.02)
        with database_down(app):
            time.sleep(1.5)

    thread = threading.Thread(target=outage)
    thread.start()
    started = time.monotonic()
    response = _send(client, account, shop)
    elapsed = time.monotonic() - started
    thread.join()
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "queued"
    assert elapsed < 2.5  # cut short by the outage, not the full wait
    with app.app_context():
        assert db.session.get(Message, response.get_json()["messageId"]).status == MessageStatus.QUEUED
