"""Fixtures: a fresh app, database and in-process runtime per test, and user factories.

The schema is migrated once per run (per xdist worker) into a template SQLite file; each
test's app starts from its own copy of that file, so tests are isolated without running
Alembic each time. tests/test_migrations.py walks every revision up and down.
"""

from __future__ import annotations

import base64
import io
import itertools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from flask_migrate import upgrade
from PIL import Image

from app import MIGRATIONS_DIR, create_app
from config import TestConfig
from extensions import db
from roles.runtime import EmbeddedRuntime

_emails = itertools.count(1)
# Marked in their modules; `make test-fast` leaves them out (see pyproject.toml).
SLOW_TIERS = ("fuzz", "integration", "browser", "live_server", "neonize")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tiers first (a stable sort: every module keeps its own order), so that under
    xdist their long modules start at once and the short ones fill in around them."""
    items.sort(key=lambda item: not any(item.get_closest_marker(tier) for tier in SLOW_TIERS))


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


def decode_qr(data_url: str) -> str:
    """What a phone camera reads from a `data:image/png;base64,...` QR code."""
    assert data_url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image)
    assert results, "no QR code found in the image"
    return results[0].text


@pytest.fixture
def config_overrides() -> dict:
    """Tests override this to change the app's configuration."""
    return {}


def app_config(data_dir: Path, **overrides) -> dict:
    """TestConfig as a dict, with its data (and SQLite database) in `data_dir`."""
    config = {key: getattr(TestConfig, key) for key in dir(TestConfig) if key.isupper()}
    config.update(DATA_DIR=str(data_dir), SQLALCHEMY_DATABASE_URI=f"sqlite:///{data_dir / 'test.db'}")
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """A SQLite database upgraded to the newest migration, once per run."""
    folder = tmp_path_factory.mktemp("migrated")
    app = create_app(app_config(folder))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()  # the last connection closing folds the WAL into the file
    return folder / "test.db"


@pytest.fixture
def app(tmp_path, config_overrides, migrated_database):
    shutil.copyfile(migrated_database, tmp_path / "test.db")
    app = create_app(app_config(tmp_path, **config_overrides))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def runtime(app):
    runtime = EmbeddedRuntime(app)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def client(app, runtime):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class Account:
    email: str
    password: str
    token: str
    user_id: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_account(app) -> Callable[..., Account]:
    """Register an account over the API (optionally moved to a plan) and return its token."""

    def make(plan: str | None = None, password: str = "correct horse battery") -> Account:
        email = f"user{next(_emails)}@example.com"
        client = app.test_client()
        response = client.post("/api/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        if plan:
            result = app.test_cli_runner().invoke(args=["users", "set-plan", email, plan])
            assert result.exit_code == 0, result.output
        return Account(email, password, body["token"], body["user"]["userId"])

    return make


@pytest.fixture
def account(make_account) -> Account:
    return make_account()


def pair_session(client, account: Account, phone: str | None = "919876543210") -> str:
    """Create a session and pair it through its QR, as a phone scanning it would."""
    created = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()
    session_id = created["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    response = client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": phone} if phone else None)
    assert response.status_code == 200, response.get_json()
    return session_id


@pytest.fixture
def paired_session(client, account) -> str:
    """A session of `account`, paired and connected."""
    return pair_session(client, account)


@pytest.fixture
def growth_session(client, make_account) -> tuple[Account, str]:
    """A Growth-plan account (bulk send allowed) with a paired session."""
    account = make_account(plan="growth")
    return account, pair_session(client, account, phone=None)
