"""The shared fixtures: a fresh app, database and in-process runtime per test, accounts,
a paired session (`shop`) and a webhook receiver. Helpers are in tests/helpers.py.

The schema is migrated once per run (per xdist worker) into a template SQLite file; each
test's app starts from its own copy of that file, so tests are isolated without running
Alembic each time. tests/test_migrations.py walks every revision up and down.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from app import MIGRATIONS_DIR, create_app
from extensions import db
from roles.runtime import EmbeddedRuntime
from services.platform.retention import PRUNE_JOB
from services.platform.settled import settled_listener_stop
from tests.helpers import Account, app_config, pair_session
from tests.receiver import Receiver

_emails = itertools.count(1)
# What a starting runtime schedules for itself, to run every few minutes for good.
PERIODIC_JOBS = ("jobs.stats.stats_aggregate_all", PRUNE_JOB)
# Marked in their modules; `make test-fast` leaves them out (see pyproject.toml).
SLOW_TIERS = ("fuzz", "integration", "browser", "live_server", "neonize")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tiers first (a stable sort: every module keeps its own order), so that under
    xdist their long modules start at once and the short ones fill in around them."""
    items.sort(key=lambda item: not any(item.get_closest_marker(tier) for tier in SLOW_TIERS))


@pytest.fixture
def config_overrides() -> dict:
    """Tests override this to change the app's configuration."""
    return {}


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
def app(request, tmp_path, config_overrides, migrated_database):
    shutil.copyfile(migrated_database, tmp_path / "test.db")
    app = create_app(app_config(tmp_path, **config_overrides))
    yield app
    settled_listener_stop(app.extensions)
    with app.app_context():
        db.engine.dispose()
    if "runtime" not in request.fixturenames:
        left = _jobs_left(app)
        assert not left, f"the test queued {left}, but no worker ran them: it needs the `runtime` fixture"


def _jobs_left(app) -> list[str]:
    """The jobs on the app's queues, due or delayed: work that only a runtime would do
    (but for the periodic ones, aggregation and pruning, which a starting runtime schedules itself)."""
    connection = app.extensions["wagate.redis"]
    left = []
    for queue in Queue.all(connection=connection, serializer=JSONSerializer):
        scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
        jobs = queue.get_jobs() + Job.fetch_many(scheduled, connection=connection, serializer=JSONSerializer)
        left += [job.func_name for job in jobs if job and job.func_name not in PERIODIC_JOBS]
    return left


@pytest.fixture
def runtime(app):
    """The embedded runtime: RQ worker, scheduler and engine host (simulator) threads. Only
    tests that need jobs run (pairing, sending, events, webhooks...) ask for it."""
    runtime = EmbeddedRuntime(app)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


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


@pytest.fixture
def starter(make_account) -> Account:
    """A Starter-plan account: the cheapest plan with webhooks."""
    return make_account(plan="starter")


@pytest.fixture
def shop_owner(account) -> Account:
    """Whose session `shop` is: `account`, unless a module needs another plan's (`starter`)."""
    return account


@pytest.fixture
def shop(client, runtime, shop_owner) -> str:
    """A session of `shop_owner`, paired (as SHOP_PHONE) and connected."""
    return pair_session(client, shop_owner)


@pytest.fixture
def growth_session(client, runtime, make_account) -> tuple[Account, str]:
    """A Growth-plan account (bulk send allowed) with a paired session."""
    account = make_account(plan="growth")
    return account, pair_session(client, account, phone=None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (webhooks reach it with LOCAL_RECEIVERS' configuration)."""
    receiver = Receiver()
    yield receiver
    receiver.close()
