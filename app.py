"""wagate: the app factory, and (run as a script) the embedded all-in-one server.

`python app.py` serves http://127.0.0.1:5000 with SQLite, an in-process Redis stand-in,
an in-process RQ worker and an in-process engine host running the simulator engine.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask
from socketio import RedisManager
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from extensions import csrf, db, limiter, login_manager, migrate, queues, socketio
from jobs.queues import redis_options, sentinel_socketio
from services.accounts.users import user_for_cookie
from services.events.subscribers import subscribers_connect
from services.platform.green import process_is_green
from services.platform.logs import logs_configure

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def _secret_key(data_dir: Path) -> str:
    """A random key kept under DATA_DIR, so tokens survive restarts with no known default."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _sqlite_engine_options(config: dict) -> dict:
    """SQLite is a file this process opens: no server can drop an idle connection, so none is
    tested before use; an in-memory database is one shared connection (Flask-SQLAlchemy's),
    which has no pool to size."""
    options = {key: value for key, value in config["SQLALCHEMY_ENGINE_OPTIONS"].items() if key != "pool_pre_ping"}
    if config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite://") in ("", "/:memory:"):
        sizing = ("pool_size", "max_overflow", "pool_timeout")
        options = {key: value for key, value in options.items() if key not in sizing}
    return options


def _postgresql_engine_options(config: dict) -> dict:
    """Bounded waits on a PostgreSQL server, so an outage is an error within seconds (503)
    rather than a request that hangs: connecting (libpq's connect_timeout), any one
    statement (statement_timeout, set when the connection starts), and TCP keepalives
    that find a server gone silent within half a minute."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    statement_ms = int(config["DATABASE_STATEMENT_TIMEOUT_SECONDS"] * 1000)
    options["connect_args"] = {
        "connect_timeout": config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
        "options": f"-c statement_timeout={statement_ms}",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        **options.get("connect_args", {}),
    }
    return options


def _sqlite_pragmas(connection, record) -> None:
    """SQLite for a multi-threaded server: WAL so readers never block the writer, a busy
    timeout instead of 'database is locked', and enforced foreign keys (ON DELETE CASCADE)."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=15000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _socketio_async_mode() -> str:
    """gevent in a process gevent has patched, threads in every other.

    The web role runs under gunicorn's gevent worker, which patches the standard library before
    it loads the app: each live client is then a greenlet, not a thread (README, Running the
    roles separately). The engine host and the embedded default are never patched (neonize
    blocks inside Go calls, which would freeze every greenlet), so they keep threads. Never
    engineio's own pick, which takes gevent whenever it is installed, patched or not.
    """
    return "gevent" if process_is_green() else "threading"


def _socketio_queue(config: dict) -> dict:
    """Flask-SocketIO's Redis message queue with the app's bounded waits on Redis (made here:
    Flask-SocketIO makes its own without a way to pass them); without Redis, none (said
    outright: the extension keeps the options of the app it was bound to before); with
    REDIS_SENTINELS, through the primary they name."""
    if not config["REDIS_URL"]:
        return {"client_manager": None}
    if config.get("REDIS_SENTINELS"):
        url, options = sentinel_socketio(config)
    else:
        url, options = config["REDIS_URL"], redis_options(config)
    return {"client_manager": RedisManager(url, channel="flask-socketio", redis_options=options)}


def create_app(config: type | dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(data_dir)
    if app.config["PUBLIC_URL"].startswith("https://"):
        # Served over HTTPS: the login cookies never travel over plain HTTP.
        app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = True
    logs_configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if sqlite:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _sqlite_engine_options(app.config)
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _postgresql_engine_options(app.config)
    db.init_app(app)
    if sqlite:
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    queues.init_app(app)  # first: without REDIS_URL, the rate limits count in its stand-in
    limiter.init_app(app)
    socketio.init_app(
        app,
        message_queue=app.config["REDIS_URL"] or None,
        async_mode=_socketio_async_mode(),
        ping_interval=app.config["SOCKETIO_PING_INTERVAL"],
        ping_timeout=app.config["SOCKETIO_PING_TIMEOUT"],
        **_socketio_queue(app.config),
    )
    if app.config["PROXY_FIX_X_FOR"]:
        # Outside Socket.IO's middleware, so its handshakes see the client's address too
        # (TRUSTED_NETWORKS), not the proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=1, x_host=1)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "dashboard.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.user_loader(user_for_cookie)
    subscribers_connect()

    from blueprints import (
        aulm,
        auth,
        dashboard,
        docs,
        errors,
        events,
        health,
        keys,
        messages,
        metrics,
        realtime,
        security,
        selfhosted,
        sessions,
        simulator,
        wallm,
        wamux,
        webhooks,
        whatsapp,
    )
    from blueprints.contract import body

    errors.register(app)
    metrics.register(app)  # after errors: it binds the request id to the request's log lines
    body.register(app)
    security.register(app)
    realtime.register()
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(auth.bp, url_prefix="/api")
    app.register_blueprint(sessions.bp, url_prefix="/api/sessions")
    app.register_blueprint(messages.bp, url_prefix="/api/messages")
    app.register_blueprint(whatsapp.bp, url_prefix="/api/whatsapp")
    app.register_blueprint(keys.bp, url_prefix="/api/keys")
    app.register_blueprint(webhooks.bp, url_prefix="/api/webhooks")
    app.register_blueprint(events.bp, url_prefix="/api/events")
    app.register_blueprint(simulator.bp)
    app.register_blueprint(selfhosted.bp, url_prefix="/api/v1")
    app.register_blueprint(selfhosted.pages)
    app.register_blueprint(wallm.bp)
    app.register_blueprint(wamux.bp, url_prefix="/api/v1")
    app.register_blueprint(wamux.pages)
    app.register_blueprint(aulm.bp)  # aulm's API, at its own paths (/v1/messages/send-*, /v1/sessions/…)
    app.register_blueprint(aulm.pages)
    # The JSON API authenticates with bearer tokens and API keys, never cookies, so CSRF cannot reach it.
    apis = (
        auth.bp,
        sessions.bp,
        messages.bp,
        whatsapp.bp,
        keys.bp,
        webhooks.bp,
        events.bp,
        simulator.bp,
        selfhosted.bp,
    )
    for api in (*apis, wallm.bp, wamux.bp, aulm.bp):
        csrf.exempt(api)

    import cli

    cli.register(app)
    return app


def main() -> None:
    """Run web, worker and engine host in this one process (the embedded default)."""
    from flask_migrate import upgrade

    from roles.runtime import EmbeddedRuntime

    app = create_app()
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    runtime = EmbeddedRuntime(app)
    runtime.start()
    try:
        app.logger.info("wagate listening on http://%s:%s", app.config["HOST"], app.config["PORT"])
        # Werkzeug calls itself a development server below: one process must hold every role here
        # (README, Quick start); the production roles run under gunicorn instead.
        app.logger.info("embedded default: one process, served by Werkzeug's threaded server; see the README")
        socketio.run(
            app,
            host=app.config["HOST"],
            port=app.config["PORT"],
            allow_unsafe_werkzeug=True,
            use_reloader=False,
            log_output=os.environ.get("ACCESS_LOG", "") == "1",
        )
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
