"""Session leases: one engine host owns a session, for a time, under a fencing token.

A host holds a session while its row names the host (`engine_host`) and `lease_until` is
ahead; every new holder raises `lease_generation` by one. The host renews what it holds
every few seconds; a lease it fails to renew is lost and the host stops that session at
once. Whatever a host writes for a session it holds is checked against the generation it
took, in the same transaction (`lease_lock`), so a host that was paused or cut off while
another took over can neither send nor change the session's state.

Times are the database's own clock on PostgreSQL, so that hosts on several machines agree
on when a lease ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, func, literal, or_, select, tuple_, update

from extensions import db
from models import WaSession
from models.base import utcnow

# Renewals and releases touch at most this many sessions per statement.
LEASE_BATCH = 500
# A session that nobody holds is left this long to the host its start job was placed on
# before any host may take it up as an orphan.
UNOWNED_GRACE_SECONDS = 10


def lease_seconds() -> float:
    return float(current_app.config["SESSION_LEASE_SECONDS"])


def _now():
    """The database's clock on PostgreSQL; this process's elsewhere (one machine)."""
    if db.engine.dialect.name == "postgresql":
        return func.now()
    return literal(utcnow(), WaSession.lease_until.type)


def _until():
    if db.engine.dialect.name == "postgresql":
        return func.now() + timedelta(seconds=lease_seconds())
    return literal(utcnow() + timedelta(seconds=lease_seconds()), WaSession.lease_until.type)


def _lapsed():
    return or_(WaSession.lease_until.is_(None), WaSession.lease_until < _now())


def lease_acquire(session_id: str, host_id: str, alive: Iterable[str]) -> int | None:
    """Take the session's lease for `host_id`: its new generation, or None when another host
    holds it (a living host named as owner, or anybody under a lease that has not run out).

    A session named for this host is taken whatever its lease says: it was this host's last
    run's, or handed over to it. Commits."""
    others_alive = [host for host in alive if host != host_id]
    free = or_(
        WaSession.engine_host.is_(None),
        WaSession.engine_host == host_id,
        and_(_lapsed(), WaSession.engine_host.not_in(others_alive) if others_alive else literal(True)),
    )
    row = db.session.execute(
        update(WaSession)
        .where(WaSession.id == session_id, WaSession.wanted_online.is_(True), free)
        .values(engine_host=host_id, lease_generation=WaSession.lease_generation + 1, lease_until=_until())
        .returning(WaSession.lease_generation)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    return None if row is None else row[0]


def leases_take_own(host_id: str) -> dict[str, int]:
    """On a host's start: take the lease of every session that should be online and names
    this host (its last run's, or handed over to it), in one statement; session id ->
    generation. Commits."""
    rows = db.session.execute(
        update(WaSession)
        .where(WaSession.engine_host == host_id, WaSession.wanted_online.is_(True))
        .values(lease_generation=WaSession.lease_generation + 1, lease_until=_until())
        .returning(WaSession.id, WaSession.lease_generation)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return dict(rows)


def leases_renew(host_id: str, held: dict[str, int]) -> set[str]:
    """Extend the leases `held` (session id -> generation) by another term: the sessions
    still this host's under those generations. Commits."""
    renewed: set[str] = set()
    pairs = list(held.items())
    for start in range(0, len(pairs), LEASE_BATCH):
        batch = pairs[start : start + LEASE_BATCH]
        # Rows locked in id order, as every other writer of several sessions takes them: no
        # deadlock with a run of state changes or another host's takeover.
        ordered = (
            select(WaSession.id)
            .where(WaSession.engine_host == host_id, tuple_(WaSession.id, WaSession.lease_generation).in_(batch))
            .order_by(WaSession.id)
            .with_for_update()
        )
        rows = db.session.execute(
            update(WaSession)
            .where(WaSession.id.in_(ordered.scalar_subquery()))
            .values(lease_until=_until())
            .returning(WaSession.id)
            .execution_options(synchronize_session=False)
        )
        renewed.update(rows.scalars())
        db.session.commit()
    return renewed


def lease_release(session_id: str, host_id: str, generation: int, *, to_host: str | None = None) -> bool:
    """Give the lease up now, naming `to_host` as the next owner (None: whoever takes it).
    Whether it was still this host's to give. Commits."""
    released = db.session.execute(
        update(WaSession)
        .where(WaSession.id == session_id, WaSession.engine_host == host_id, WaSession.lease_generation == generation)
        .values(engine_host=to_host, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(released)


def lease_lock(session_id: str, host_id: str, generation: int) -> WaSession | None:
    """The session's row, locked for the rest of the transaction, if `host_id` still holds it
    under `generation`; None otherwise. A takeover waits for the lock, so what the caller
    writes before it commits is written under the lease it checked."""
    return db.session.scalars(
        select(WaSession)
        .where(WaSession.id == session_id, WaSession.engine_host == host_id, WaSession.lease_generation == generation)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _orphaned(alive: Iterable[str], grace: bool):
    """The condition for a session that should be online and no living host holds."""
    alive = list(alive)
    owner_gone = WaSession.engine_host.not_in(alive) if alive else literal(True)
    unowned = WaSession.engine_host.is_(None)
    if grace:
        unowned = and_(unowned, WaSession.updated_at < utcnow() - timedelta(seconds=UNOWNED_GRACE_SECONDS))
    return and_(
        WaSession.wanted_online.is_(True),
        or_(unowned, and_(WaSession.engine_host.is_not(None), owner_gone, _lapsed())),
    )


def sessions_orphaned(alive: Iterable[str], limit: int, *, grace: bool = True) -> list[str]:
    """Up to `limit` sessions that should be online and no living host holds: unowned (with
    `grace`, for UNOWNED_GRACE_SECONDS: left to the host their start was placed on), or named
    for a host that is not alive and whose lease ran out."""
    query = select(WaSession.id).where(_orphaned(alive, grace)).order_by(WaSession.created_at).limit(limit)
    return list(db.session.scalars(query))


def sessions_orphaned_count(alive: Iterable[str]) -> int:
    """How many sessions `sessions_orphaned` would find, with no limit."""
    return db.session.scalar(select(func.count()).select_from(WaSession).where(_orphaned(alive, True)))


def hosts_gone(alive: Iterable[str]) -> list[str]:
    """The hosts named as a session's owner that are not alive and hold no lease that has
    not run out: whatever waits for them is for others to take."""
    alive = list(alive)
    named = select(WaSession.engine_host).where(WaSession.engine_host.is_not(None))
    if alive:
        named = named.where(WaSession.engine_host.not_in(alive))
    holding = select(WaSession.engine_host).where(WaSession.engine_host.is_not(None), ~_lapsed())
    return list(db.session.scalars(named.where(WaSession.engine_host.not_in(holding)).distinct()))


def sessions_wanted_count() -> int:
    """How many sessions should be online, over all hosts."""
    return db.session.scalar(select(func.count()).select_from(WaSession).where(WaSession.wanted_online.is_(True)))


def sessions_named() -> dict[str, int]:
    """How many sessions that should be online name each host: those it holds, and those
    placed on it or handed over to it that it has not taken up yet."""
    return dict(
        db.session.execute(
            select(WaSession.engine_host, func.count())
            .where(WaSession.wanted_online.is_(True), WaSession.engine_host.is_not(None))
            .group_by(WaSession.engine_host)
        ).all()
    )


def host_with_most_room(alive: dict[str, dict], exclude: Iterable[str] = ()) -> str | None:
    """Of the living hosts (their heartbeats) that are not draining nor in `exclude`, the one
    with the fewest sessions named for it against its capacity; None if there is none."""
    named = sessions_named()
    room = [
        (named.get(host_id, 0) / max(1, beat.get("capacity") or 1), host_id)
        for host_id, beat in alive.items()
        if host_id not in set(exclude) and not beat.get("draining")
    ]
    return min(room)[1] if room else None


def session_place(session_id: str, alive: dict[str, dict]) -> str | None:
    """Name the host with the most room as the owner of a session that no living host owns,
    for it to take up (its start job goes there): the host named, or the living owner it
    already has, or None with no host alive. Commits."""
    host_id = host_with_most_room(alive)
    if host_id is None:
        return None
    owner_gone = WaSession.engine_host.not_in(list(alive))
    db.session.execute(
        update(WaSession)
        .where(WaSession.id == session_id, or_(WaSession.engine_host.is_(None), and_(owner_gone, _lapsed())))
        .values(engine_host=host_id, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    owner = db.session.scalar(select(WaSession.engine_host).where(WaSession.id == session_id))
    return owner if owner in alive else None
