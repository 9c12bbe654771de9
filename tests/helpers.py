"""What tests call: waiting with a deadline, reading a QR code, pairing a session the way a
phone does, the test app's configuration, and small HTTP servers on loopback.

The fixtures built on these live in tests/conftest.py; sample media in tests/fixtures.py.
"""

from __future__ import annotations

import base64
import io
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image

from config import TestConfig

# The phone number a session paired by `pair_session` (and the `shop` fixture) gets.
SHOP_PHONE = "919876543210"
# Webhooks may call receivers on loopback (only an operator's switch allows that), and retry
# after a second instead of after minutes.
LOCAL_RECEIVERS = {"ALLOW_PRIVATE_URLS": True, "WEBHOOK_RETRY_DELAYS": [1, 1, 1, 1, 1]}


def app_config(data_dir: Path, **overrides) -> dict:
    """TestConfig as a dict, with its data (and SQLite database) in `data_dir`."""
    config = {key: getattr(TestConfig, key) for key in dir(TestConfig) if key.isupper()}
    config.update(DATA_DIR=str(data_dir), SQLALCHEMY_DATABASE_URI=f"sqlite:///{data_dir / 'test.db'}")
    config.update(overrides)
    return config


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def without_cursor(payload: dict) -> dict:
    """A Socket.IO or SSE payload without its `eventId`, which must be an event log cursor."""
    rest = dict(payload)
    assert re.fullmatch("[0-9a-f]{16}", rest.pop("eventId", None) or ""), payload
    return rest


def decode_qr(data_url: str) -> str:
    """What a phone camera reads from a `data:image/png;base64,...` QR code."""
    assert data_url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image)
    assert results, "no QR code found in the image"
    return results[0].text


@dataclass
class Account:
    email: str
    password: str
    token: str
    user_id: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def pair_session(client, account: Account, phone: str | None = SHOP_PHONE) -> str:
    """Create a session and pair it through its QR, as a phone scanning it would (the
    engine host does the pairing: the test needs the `runtime` fixture)."""
    created = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()
    session_id = created["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    response = client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": phone} if phone else None)
    assert response.status_code == 200, response.get_json()
    return session_id


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `handler` on a free port of `host` from a thread; yields the base URL."""
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    # A short poll: shutting down waits for the serving loop to look again.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def redis_down(app) -> Iterator[None]:
    """Redis unreachable until the block ends: the stand-in answers every command with the
    connection error a stopped server gives (its data stays, as a restarted server's would)."""
    server = app.extensions["wagate.redis"].connection_pool.connection_kwargs["server"]
    server.connected = False
    try:
        yield
    finally:
        server.connected = True


@contextmanager
def database_down(app) -> Iterator[None]:
    """The database unreachable until the block ends: every connection the pool hands out is
    found dead, and connecting again fails as with a server that is gone."""
    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    with app.app_context():
        from extensions import db

        engine = db.engine

    def dead(*args) -> None:
        raise DisconnectionError("the database went away")

    def refuse(*args) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    event.listen(engine, "checkout", dead)
    event.listen(engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(engine, "checkout", dead)
        event.remove(engine, "do_connect", refuse)
