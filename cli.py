"""`flask` commands: process roles and operator tools."""

from __future__ import annotations

import logging
import signal

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from rq.serializers import JSONSerializer
from sqlalchemy import select

from blueprints.contract.native import native
from blueprints.schemas.simulator import Inbound
from config import shared_stores_missing
from engines.simulator import FAULTS
from extensions import db, queues
from jobs.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE
from jobs.worker import SchedulingWorker
from models import Plan, User, WaSession
from services.accounts.passwords import reset_link
from services.accounts.quotas import plan_quota_describe, plan_quota_set
from services.accounts.users import user_set_plan
from services.errors import ApiError
from services.messaging.inbound import simulate_inbound
from services.platform.faults import ALL_SESSIONS, faults_clear, faults_list, faults_set
from services.platform.store_outage import wait_out

users_cli = AppGroup("users", help="Manage accounts.")
plans_cli = AppGroup("plans", help="Show plans and set their message quotas.")
simulator_cli = AppGroup("simulator", help="Switch the simulator engine's faults.")


@users_cli.command("set-plan")
@click.argument("email")
@click.argument("plan")
def set_plan(email: str, plan: str) -> None:
    """Move the account EMAIL to PLAN (free, starter, growth, business, enterprise)."""
    try:
        user = user_set_plan(email=email, plan_id=plan)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{user.email} is now on the {user.plan.name} plan")


@users_cli.command("reset-link")
@click.argument("email")
def reset_link_command(email: str) -> None:
    """Print a single-use password reset link for EMAIL (for servers without SMTP)."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No account with email {email}")
    with current_app.test_request_context():  # url_for needs a request; the link uses PUBLIC_URL
        click.echo(reset_link(user))


@plans_cli.command("list")
def plans_list() -> None:
    """Show every plan with its sessions and message quota."""
    for plan in db.session.scalars(select(Plan).order_by(Plan.rank)):
        click.echo(f"{plan.id:<12} {plan.max_sessions:>3} sessions  {plan_quota_describe(plan)}")


@plans_cli.command("set-quota")
@click.argument("plan")
@click.option("--daily", type=int, help="Messages a day (UTC).")
@click.option("--trial", type=int, help="Messages in total during the trial.")
@click.option("--trial-days", type=int, help="Length of the trial, from signup.")
@click.option("--unlimited", is_flag=True, help="No message limit.")
def plans_set_quota(plan: str, daily: int | None, trial: int | None, trial_days: int | None, unlimited: bool) -> None:
    """Set PLAN's message quota: --daily N, --trial N --trial-days D, or --unlimited."""
    if unlimited == (daily is not None or trial is not None):
        raise click.ClickException("Give --daily, --trial (with --trial-days) or --unlimited")
    try:
        changed = plan_quota_set(plan, daily=daily, trial=trial, trial_days=trial_days)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{changed.name}: {plan_quota_describe(changed)}")


def _require_simulator() -> None:
    if current_app.config["WA_ENGINE"] != "simulator":
        raise click.ClickException("The simulator is not the engine of this server (WA_ENGINE)")


@simulator_cli.command("fault")
@click.argument("name", type=click.Choice(FAULTS))
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--session", "session_id", default=ALL_SESSIONS, help="Only this session (default: all).")
def fault(name: str, state: str, session_id: str) -> None:
    """Switch the fault NAME on or off."""
    _require_simulator()
    active = faults_set(queues.connection, session_id, {name: state == "on"})
    click.echo(f"faults for {session_id}: {', '.join(active) or 'none'}")


@simulator_cli.command("faults")
@click.option("--session", "session_id", default=ALL_SESSIONS, help="Only this session (default: all).")
def faults(session_id: str) -> None:
    """Show the faults switched on."""
    _require_simulator()
    click.echo(f"faults for {session_id}: {', '.join(faults_list(queues.connection, session_id)) or 'none'}")


@simulator_cli.command("clear")
@click.option("--session", "session_id", default=ALL_SESSIONS, help="Only this session (default: all).")
def clear(session_id: str) -> None:
    """Switch every fault off."""
    _require_simulator()
    faults_clear(queues.connection, session_id)
    click.echo(f"faults for {session_id}: none")


@simulator_cli.command("inbound")
@click.argument("session_id")
@click.argument("sender")
@click.argument("text")
def inbound(session_id: str, sender: str, text: str) -> None:
    """Have the contact SENDER send TEXT to the session SESSION_ID."""
    _require_simulator()
    session = db.session.get(WaSession, session_id)
    if session is None:
        raise click.ClickException(f"No session {session_id}")
    try:
        # The same check as the API's POST /api/simulator/sessions/{id}/inbound.
        content = native.validate(Inbound, {"from": sender, "message": text})
        simulate_inbound(session.user, session_id, sender=sender, content=content)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{sender} -> {session_id}: message on its way")


def _require_shared_stores(role: str) -> None:
    """Refuse to start a role meant to run beside others without Redis and PostgreSQL."""
    problem = shared_stores_missing(role, current_app.config)
    if problem:
        raise click.ClickException(problem)


def _metrics_serve(role: str, setting: str) -> None:
    """Serve the role's metrics on the port SETTING names (none when unset), or refuse to start."""
    from roles.metrics import role_metrics_serve

    try:
        role_metrics_serve(current_app, role, current_app.config[setting])
    except OSError as exc:
        raise click.ClickException(
            f"wagate {role}: cannot serve metrics on {current_app.config['METRICS_ADDRESS']}:"
            f"{current_app.config[setting]} ({setting}): {exc.strerror or exc}"
        ) from exc


@click.command("engine-host")
@click.option("--id", "host_id", default=None, help="Host id (default: ENGINE_HOST_ID or the hostname).")
def engine_host(host_id: str | None) -> None:
    """Run an engine host: owns WhatsApp sessions, runs their jobs, never forks. It keeps
    running while PostgreSQL or Redis restarts (each of its loops waits an outage out)."""
    _require_shared_stores("engine host")
    from roles.engine_host import EngineHost
    from roles.metrics import engine_host_unwatch, engine_host_watch

    _metrics_serve("engine host", "ENGINE_HOST_METRICS_PORT")
    host = EngineHost(current_app._get_current_object(), host_id=host_id)

    def request_stop(signum, frame) -> None:
        host.worker.stop()  # the job loop ends within a second; a running job finishes first

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    host.start()
    engine_host_watch(host)
    click.echo(f"engine host {host.id} running the {host.engine.name} engine")
    try:
        host.worker.work(logging_level="INFO")
    finally:
        engine_host_unwatch(host)
        host.stop()  # retires the heartbeat, so jobs go to the shared queue at once


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker for the default queue (forks a work horse per job, with the scheduler),
    the webhook workers (threads) and the relay that hands Redis what the database holds
    (services/messaging/relay.py). It keeps running while PostgreSQL or Redis restarts; a
    job that fails only because one is out of reach runs again later."""
    _require_shared_stores("worker")
    from roles.runtime import worker_startup
    from roles.webhook_workers import WebhookWorkers
    from services.messaging.relay import Relay

    def startup() -> None:
        try:
            worker_startup()
        except Exception:
            db.session.rollback()  # the next try starts afresh
            raise

    _metrics_serve("worker", "WORKER_METRICS_PORT")
    relay = Relay(current_app._get_current_object())
    relay.start()
    try:
        # What a starting worker picks up needs both stores: wait for them (a restart during an outage).
        wait_out(startup, what="worker startup", logger=logging.getLogger(__name__))
        connection = queues.worker_connection(current_app)
        if burst:
            SchedulingWorker(
                [queues.queue(DEFAULT_QUEUE, connection), queues.queue(WEBHOOK_QUEUE, connection)],
                connection=connection,
                serializer=JSONSerializer,
            ).work(with_scheduler=True, burst=True, logging_level="INFO")
            return
        webhooks = WebhookWorkers(current_app._get_current_object())
        webhooks.start()
        try:
            queue = queues.queue(DEFAULT_QUEUE, connection)
            SchedulingWorker([queue], connection=connection, serializer=JSONSerializer).work(
                with_scheduler=True, logging_level="INFO"
            )
        finally:
            # An attempt under way ends within its timeout; one cut short is made again later.
            webhooks.stop(timeout=current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    finally:
        relay.stop()


def register(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(plans_cli)
    app.cli.add_command(simulator_cli)
    app.cli.add_command(engine_host)
    app.cli.add_command(worker)
