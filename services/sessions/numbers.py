"""Is a number on WhatsApp? Asked through the session's engine, answers cached in Redis.

A bulk send or a CRM sync asks about the same numbers again and again; asking WhatsApp
each time is slow and is the kind of pattern WhatsApp flags. Each answer is kept for
NUMBER_CHECK_CACHE_SECONDS per session (a number's presence seldom changes), so only
numbers not asked about recently reach the engine.
"""

from __future__ import annotations

import json

from flask import current_app

from extensions import queues
from jobs import engine as engine_jobs
from models import User
from services.hosts.calls import engine_ask
from services.platform.phones import phone_normalize
from services.sessions.lifecycle import session_get, session_require_connected

BATCH_MAX = 100
CACHE_KEY = "wagate:on-whatsapp:{}:{}"


def numbers_check(user: User, session_id: str, phones: list[str], *, field: str = "phones") -> list[dict]:
    """For each number (1 to 100 of them, as the schema has it), in the order given:
    {phone, exists, waId, cached}. `field` names the numbers in errors as the caller gave
    them (a list in the body, or one in the path)."""
    session = session_get(user, session_id)
    normalized = [phone_normalize(phone, field=field) for phone in phones]
    unique = list(dict.fromkeys(normalized))
    connection = queues.connection
    cached = dict(zip(unique, connection.mget([CACHE_KEY.format(session.id, p) for p in unique]), strict=True))
    missing = [phone for phone in unique if cached[phone] is None]
    answers = {phone: json.loads(value) for phone, value in cached.items() if value is not None}
    if missing:
        session_require_connected(session, "numbers are checked through a connected session")
        found = engine_ask(
            session,
            engine_jobs.engine_numbers_check,
            session.id,
            missing,
            seconds=current_app.config["NUMBER_CHECK_WAIT_SECONDS"],
        )
        ttl = current_app.config["NUMBER_CHECK_CACHE_SECONDS"]
        with connection.pipeline(transaction=False) as pipe:
            for phone in missing:
                answers[phone] = found.get(phone)
                pipe.set(CACHE_KEY.format(session.id, phone), json.dumps(answers[phone]), ex=ttl)
            pipe.execute()
    return [
        {"phone": phone, "exists": answers[phone] is not None, "waId": answers[phone], "cached": phone not in missing}
        for phone in normalized
    ]
