from flask import current_app, render_template, request

from blueprints.common import (
    api_rate_limit,
    auth_required,
    current_user,
    live_required,
    unrestricted_required,
)
from blueprints.contract.native import AUTHED, ENGINE, PUBLIC, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.schemas import simulator as schemas
from blueprints.schemas.service import Html
from blueprints.simulator import bp
from extensions import queues
from models import WaSession
from services.errors import ApiError, Forbidden, NotFound
from services.messaging.inbound import simulate_address_book, simulate_inbound
from services.platform.faults import ALL_SESSIONS, faults_clear, faults_list, faults_set
from services.sessions import lifecycle as svc
from services.sessions.presence import simulate_presence


def _require_simulator() -> None:
    if current_app.config["WA_ENGINE"] != "simulator":
        raise NotFound("The simulator is not the engine of this server", code="SIMULATOR_DISABLED")


def _fault_scope() -> str:
    """One session's faults (its owner may switch them) or everybody's (admins only)."""
    session_id = request.args.get("sessionId")
    if session_id:
        return svc.session_get(current_user(), session_id).id
    unrestricted_required("switch faults for all sessions")
    if not current_user().is_admin:
        raise Forbidden("Only an admin may switch faults for all sessions; pass ?sessionId=", code="ADMIN_REQUIRED")
    return ALL_SESSIONS


SIMULATOR_ERRORS = (*AUTHED, 403, 404)
PAIRED = Answer(200, "Paired", schemas.Paired)


@bp.get("/sim/pair/<session_id>/<token>")
@native.operation(
    "simulatorPairPage",
    "Simulator",
    Answer(200, "What a phone camera opens: a page with a Pair button", Html, media_type="text/html"),
    errors=(404,),
    security=PUBLIC,
)
def pair_page(session_id: str, token: str):
    """The simulated phone's pairing page

    What a phone camera opens: a page with the simulated phone's pair button.
    """
    _require_simulator()
    return render_template("simulator/pair.html", session_id=session_id, token=token)


@bp.post("/sim/pair/<session_id>/<token>")
@native.operation(
    "simulatorPair",
    "Simulator",
    PAIRED,
    Answer(202, "Scan accepted; pairing", schemas.Paired),
    errors=(400, 404, 409, 413, *ENGINE),
    security=PUBLIC,
)
@native.request(body=schemas.PairScan, required=False, forms=True)
def pair(session_id: str, token: str, body: dict | None):
    """The simulated phone scans the QR code

    Optionally with the phone's number. Only the session's current QR code pairs
    (`409 QR_SUPERSEDED`, `409 QR_EXPIRED`).
    """
    from_form = body is None
    phone = (request.form.get("phone") or None) if from_form else body.get("phone")
    try:
        session = svc.session_pair_simulated(session_id, token, phone)
    except ApiError as exc:
        if from_form:
            return render_template("simulator/paired.html", error=exc.message), exc.status
        raise
    if from_form:
        return render_template("simulator/paired.html", session=session)
    return _pairing_answer(session_id, session, "Scan accepted; pairing...")


@bp.post("/sim/pair-code/<session_id>")
@native.operation(
    "simulatorPairCode",
    "Simulator",
    PAIRED,
    Answer(202, "Code accepted; pairing", schemas.Paired),
    errors=(*WITH_BODY, 404, 409, 503, 504),
    security=PUBLIC,
)
@native.request(body=schemas.PairCodeEntry)
def pair_code(session_id: str, body: dict):
    """The simulated phone enters a pairing code

    The code the session gave (`{"code": "ABCD-EFGH"}`).
    """
    session = svc.session_pair_code_simulated(session_id, body["code"])
    return _pairing_answer(session_id, session, "Code accepted; pairing...")


def _pairing_answer(session_id: str, session: WaSession | None, accepted: str):
    """Paired (200), or accepted while the engine host pairs it (202, no session yet)."""
    if session is None:
        return {"success": True, "sessionId": session_id, "status": "connecting", "message": accepted}, 202
    return {
        "success": True,
        "sessionId": session.id,
        "status": session.status,
        "phone": session.phone,
        "message": "Paired",
    }


FAULT_STATE = Answer(200, "The faults switched on", schemas.FaultState)


@bp.get("/api/simulator/faults")
@native.operation("getSimulatorFaults", "Simulator", FAULT_STATE, errors=SIMULATOR_ERRORS)
@api_rate_limit
@auth_required
@native.request(query=schemas.FaultScope)
def faults_show(query: dict):
    """The simulator's faults

    Those switched on for a session (`?sessionId=`) or for all sessions.
    """
    _require_simulator()
    scope = _fault_scope()
    return {"scope": scope, "faults": faults_list(queues.connection, scope)}


@bp.put("/api/simulator/faults")
@native.operation("setSimulatorFaults", "Simulator", FAULT_STATE, errors=(*WITH_BODY, *SIMULATOR_ERRORS))
@api_rate_limit
@auth_required
@live_required
@native.request(body=schemas.FaultSwitches, query=schemas.FaultScope)
def faults_update(body: dict, query: dict):
    """Switch simulator faults

    On (true) or off (false), for a session (`?sessionId=`, its owner) or for all sessions
    (an admin).
    """
    _require_simulator()
    scope = _fault_scope()
    return {"scope": scope, "faults": faults_set(queues.connection, scope, body)}


@bp.delete("/api/simulator/faults")
@native.operation("clearSimulatorFaults", "Simulator", FAULT_STATE, errors=SIMULATOR_ERRORS)
@api_rate_limit
@auth_required
@live_required
@native.request(query=schemas.FaultScope)
def faults_reset(query: dict):
    """Switch every simulator fault off

    Of the scope: a session (`?sessionId=`) or all sessions.
    """
    _require_simulator()
    scope = _fault_scope()
    faults_clear(queues.connection, scope)
    return {"scope": scope, "faults": []}


@bp.post("/api/simulator/sessions/<session_id>/inbound")
@native.operation(
    "simulateInbound",
    "Simulator",
    Answer(202, "On its way", schemas.Accepted),
    errors=(*WITH_BODY, *SIMULATOR_ERRORS, 415, *ENGINE),
)
@api_rate_limit
@auth_required
@live_required
@native.request(body=schemas.Inbound, max_bytes="SEND_MAX_REQUEST_BYTES")
def inbound(session_id: str, body: dict):
    """A contact writes to the session

    `from` plus any payload a send takes ({"from", "message"}, {"from", "image": ...},
    {"from", "location": ...}, {"from", "reaction": ...}), or a vote on one of the session's
    polls ({"from", "vote": {"messageId", "options": [...]}}).
    """
    _require_simulator()
    simulate_inbound(current_user(), session_id, sender=body["from"], content=body)
    return {"success": True, "sessionId": session_id, "message": "The contact's message is on its way"}, 202


@bp.post("/api/simulator/sessions/<session_id>/presence")
@native.operation(
    "simulatePresence",
    "Simulator",
    Answer(202, "On its way", schemas.Accepted),
    errors=(*WITH_BODY, *SIMULATOR_ERRORS, *ENGINE),
)
@api_rate_limit
@auth_required
@live_required
@native.request(body=schemas.ContactPresence)
def presence(session_id: str, body: dict):
    """A contact's presence changes

    Online, offline, typing, recording or paused (`chat`: the group they type in).
    """
    _require_simulator()
    simulate_presence(current_user(), session_id, sender=body["from"], state=body["state"], chat=body.get("chat"))
    return {"success": True, "sessionId": session_id}, 202


@bp.post("/api/simulator/sessions/<session_id>/address-book")
@native.operation(
    "simulateAddressBook",
    "Simulator",
    Answer(202, "Syncing", schemas.AddressBookSyncing),
    errors=(*WITH_BODY, *SIMULATOR_ERRORS, *ENGINE),
)
@api_rate_limit
@auth_required
@live_required
# Up to 5000 contacts with their names can be more than MAX_CONTENT_LENGTH.
@native.request(body=schemas.AddressBook, max_bytes="SEND_MAX_REQUEST_BYTES")
def address_book(session_id: str, body: dict):
    """The simulated phone's address book syncs

    `{"contacts": [{"phone", "name"}]}`.
    """
    _require_simulator()
    count = simulate_address_book(current_user(), session_id, body["contacts"])
    return {"success": True, "sessionId": session_id, "count": count}, 202
