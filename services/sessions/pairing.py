"""The dashboard's "simulate scan" button: the simulated phone scans the session's current QR."""

from urllib.parse import urlsplit

from models import WaSession
from services.errors import Conflict
from services.sessions.lifecycle import session_pair_simulated


def simulated_scan(session: WaSession, phone: str | None = None) -> WaSession | None:
    if not session.has_qr or not session.qr_payload:
        raise Conflict("There is no QR code to scan right now; connect the session first", code="NO_QR")
    token = urlsplit(session.qr_payload).path.rsplit("/", 1)[-1]
    return session_pair_simulated(session.id, token, phone)
