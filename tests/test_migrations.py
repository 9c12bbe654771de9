"""Every Alembic revision, one at a time up and back down, ending in the models' schema.

The other tests start from a copy of one database migrated per run (tests/conftest.py), so
this is where the migrations themselves are exercised: here on SQLite, and on PostgreSQL
in tests/test_integration.py (`migrations_walk` against the integration cluster).
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from app import MIGRATIONS_DIR, create_app
from extensions import db
from models import Plan
from tests.helpers import app_config


def _revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _schema_differences() -> list:
    """How the database's schema differs from the models' (types included)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def _schema() -> dict:
    """Every table's columns, indexes, keys and constraints, as the database reports them."""
    inspector = inspect(db.engine)
    tables = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        tables[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "foreign keys": sorted(
                (tuple(k["constrained_columns"]), k["referred_table"], tuple(k["referred_columns"]))
                for k in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        }
    return tables


def migrations_walk(app: Flask) -> None:
    """Upgrade an empty database one revision at a time, then downgrade one at a time: each
    step down must give back exactly the schema of the revision below; then up again."""
    revisions = [script.revision for script in reversed(list(ScriptDirectory(MIGRATIONS_DIR).walk_revisions()))]
    assert len(revisions) > 1
    with app.app_context():
        assert _revision() is None
        schemas = {None: _schema()}
        for revision in revisions:
            upgrade(directory=MIGRATIONS_DIR, revision=revision)
            assert _revision() == revision
            schemas[revision] = _schema()
        assert _schema_differences() == []
        plans = set(db.session.scalars(select(Plan.id)))
        assert {"free", "starter", "growth"} <= plans
        db.session.remove()

        for below in reversed([None, *revisions[:-1]]):
            downgrade(directory=MIGRATIONS_DIR, revision=below or "base")
            assert _revision() == below
            assert _schema() == schemas[below], f"downgrading to {below or 'base'} left a different schema"
        assert schemas[None] == {}

        upgrade(directory=MIGRATIONS_DIR)
        assert _revision() == revisions[-1]
        assert _schema_differences() == []
        assert set(db.session.scalars(select(Plan.id))) == plans
        db.session.remove()
        db.engine.dispose()


def test_every_migration_runs_up_and_down_on_sqlite(tmp_path):
    migrations_walk(create_app(app_config(tmp_path)))
