from flask import current_app, jsonify, render_template, request

from blueprints.common import (
    api_rate_limit,
    auth_required,
    current_user,
    json_body,
    live_required,
    unrestricted_required,
)
from blueprints.simulator import bp
from extensions import queues
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


@bp.get("/sim/pair/<session_id>/<token>")
def pair_page(session_id: str, token: str):
    """What a phone camera opens: a page with the simulated phone's pair button."""
    _require_simulator()
    return render_template("simulator/pair.html", session_id=session_id, token=token)


@bp.post("/sim/pair/<session_id>/<token>")
def pair(session_id: str, token: str):
    """The simulated phone scans the QR: pair the session (optional JSON {"phone"})."""
    from_form = bool(request.form)
    phone = (request.form.get("phone") or None) if from_form else json_body(required=False).get("phone")
    try:
        session = svc.session_pair_simulated(session_id, token, phone)
    except ApiError as exc:
        if from_form:
            return render_template("simulator/paired.html", error=exc.message), exc.status
        raise
    if from_form:
        return render_template("simulator/paired.html", session=session)
    if session is None:
        return jsonify(
            success=True, sessionId=session_id, status="connecting", message="Scan accepted; pairing..."
        ), 202
    return jsonify(success=True, sessionId=session.id, status=session.status, phone=session.phone, message="Paired")


@bp.post("/sim/pair-code/<session_id>")
def pair_code(session_id: str):
    """The simulated phone enters the session's pairing code: {"code": "ABCD-EFGH"}."""
    session = svc.session_pair_code_simulated(session_id, json_body().get("code"))
    if session is None:
        return jsonify(
            success=True, sessionId=session_id, status="connecting", message="Code accepted; pairing..."
        ), 202
    return jsonify(success=True, sessionId=session.id, status=session.status, phone=session.phone, message="Paired")


@bp.get("/api/simulator/faults")
@api_rate_limit
@auth_required
def faults_show():
    """The faults switched on for a session (?sessionId=) or for all sessions."""
    _require_simulator()
    scope = _fault_scope()
    return jsonify(scope=scope, faults=faults_list(queues.connection, scope))


@bp.put("/api/simulator/faults")
@api_rate_limit
@auth_required
@live_required
def faults_update():
    """Switch faults on or off: {"timeout": true, "disconnect": false, ...}."""
    _require_simulator()
    scope = _fault_scope()
    return jsonify(scope=scope, faults=faults_set(queues.connection, scope, json_body()))


@bp.delete("/api/simulator/faults")
@api_rate_limit
@auth_required
@live_required
def faults_reset():
    """Switch every fault of the scope off."""
    _require_simulator()
    scope = _fault_scope()
    faults_clear(queues.connection, scope)
    return jsonify(scope=scope, faults=[])


@bp.post("/api/simulator/sessions/<session_id>/inbound")
@api_rate_limit
@auth_required
@live_required
def inbound(session_id: str):
    """A contact sends the session a message: {"from": "919876543210", "message": "Hi"}, or any
    kind a send takes ({"from", "image": ...}, {"from", "location": ...}, {"from", "reaction": ...}),
    or votes on one of its polls ({"from", "vote": {"messageId", "options": [...]}})."""
    _require_simulator()
    request.max_content_length = current_app.config["SEND_MAX_REQUEST_BYTES"]
    body = json_body()
    simulate_inbound(current_user(), session_id, sender=body.get("from"), content=body)
    return jsonify(success=True, sessionId=session_id, message="The contact's message is on its way"), 202


@bp.post("/api/simulator/sessions/<session_id>/presence")
@api_rate_limit
@auth_required
@live_required
def presence(session_id: str):
    """A contact's presence: {"from", "state": online|offline|typing|recording|paused, "chat"?}
    (chat: the group they type in)."""
    _require_simulator()
    body = json_body()
    simulate_presence(
        current_user(), session_id, sender=body.get("from"), state=body.get("state"), chat=body.get("chat")
    )
    return jsonify(success=True, sessionId=session_id), 202


@bp.post("/api/simulator/sessions/<session_id>/address-book")
@api_rate_limit
@auth_required
@live_required
def address_book(session_id: str):
    """The simulated phone's address book syncs: {"contacts": [{"phone", "name"}]}."""
    _require_simulator()
    count = simulate_address_book(current_user(), session_id, json_body().get("contacts"))
    return jsonify(success=True, sessionId=session_id, count=count), 202
