"""Who may touch what: the authorization matrix.

Every route whose URL names something (a session, message, batch, webhook, delivery, API
key, contact, group) is read from `app.url_map`, so a new one is covered the day it is
added, and an id this file does not know how to fill fails the matrix until it does.
Another user gets 404 for each of them, with a login token, a live API key, a key limited
to their own sessions, a test key or (for the dashboard) a login cookie: the same answer a
made-up id gets, so no answer reveals that somebody else's id exists, and nothing of the
owner's shows in it. Live events are isolated the same way, over Socket.IO and SSE.
"""

from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from extensions import csrf, socketio
from tests.dashboard import DashboardUser
from tests.fixtures import PNG, data_url
from tests.helpers import decode_qr, pair_session, wait_for
from tests.live import embedded_server

# Markers planted in the owner's data: none may appear in anything the intruder is answered.
SESSION_NAME = "Owner-session-3f1c"
TEXT = "Owner-text-8d2e"
CAPTION = "Owner-caption-51aa"
BULK_TEXT = "Owner-bulk-0b9d"
HOOK_PATH = "owner-hook-77e3"
KEY_NAME = "Owner-key-c4a0"
CONTACT_NAME = "Owner-contact-9e61"
GROUP_NAME = "Owner-group-2d74"
OWNER_PHONE = "919800000001"
MARKERS = (SESSION_NAME, TEXT, CAPTION, BULK_TEXT, HOOK_PATH, KEY_NAME, CONTACT_NAME, GROUP_NAME, OWNER_PHONE)

CONTACT = "919845088888"
# What each URL argument is filled with: the owner's object, looked up in the `world`.
ID_ARGUMENTS = {
    "session_id": "session",
    "message_id": "message",
    "batch_id": "batch",
    "webhook_id": "webhook",
    "delivery_id": "delivery",
    "key_id": "key",
    "phone": "phone",
    "group_id": "group",
    "chat": "phone",  # a chat is named by the contact's number (or a group id)
    "action": None,  # see ACTIONS
    "id": "session",  # aulm's /v1/sessions/<id>/status
}
# Arguments that name something of the owner's: replaced by a fresh id for the made-up twin.
OWNED = {"session_id", "message_id", "batch_id", "webhook_id", "delivery_id", "key_id", "id"}
# Routes whose argument is not an account's object, and what protects them instead.
NOT_ACCOUNT_SCOPED = {
    "static": "public files",
    "simulator.pair_page": "the QR's one-time token is the credential (a phone has no account)",
    "simulator.pair": "the QR's one-time token is the credential (a phone has no account)",
    "simulator.pair_code": "the pairing code the session showed its owner is the credential",
    "dashboard.reset_password_page": "the signed, single-use reset token is the credential",
}
# A body each route accepts from its owner, so a refusal is about who asks, not what.
BODY = {
    "name": "Mine now",
    "description": "mine",
    "to": "919876543210",
    "message": "hello",
    "phone": "919876543210",
    "phones": ["919876543210"],
    "participants": ["919876543219"],
    "enabled": False,
    "url": "http://127.0.0.1:9/intruder",
    "from": "919811112222",
    "contacts": [{"phone": "919811112222", "name": "x"}],
    "code": "ABCD-EFGH",
    "state": "typing",
}
FORM = {"name": "Mine now", "to": "919876543210", "message": "hello", "phone": "919876543210", "code": "ABCDEFGH"}
CAPABILITY_CODES = {"LIVE_KEY_REQUIRED", "SESSION_NOT_ALLOWED"}


@pytest.fixture
def config_overrides():
    return {"ALLOW_PRIVATE_URLS": True, "WEBHOOK_RETRY_DELAYS": [3600]}


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _key(client, account, **body) -> str:
    return _ok(client.post("/api/keys", json={"name": "k", **body}, headers=account.headers), 201)["key"]


@pytest.fixture
def world(client, make_account, runtime):
    """An owner with one of everything, and an intruder with every kind of credential."""
    owner = make_account(plan="enterprise")
    session_id = pair_session(client, owner, phone=OWNER_PHONE)
    auth = owner.headers
    base = f"/api/sessions/{session_id}"
    _ok(client.patch(base, json={"name": SESSION_NAME}, headers=auth))
    message_id = _ok(client.post(f"{base}/send", json={"to": "919876543210", "message": TEXT}, headers=auth))[
        "messageId"
    ]
    inbound = {"from": "919811112222", "image": {"data": data_url(PNG, "image/png"), "caption": CAPTION}}
    _ok(client.post(f"/api/simulator/sessions/{session_id}/inbound", json=inbound, headers=auth), 202)

    def received() -> list:
        log = client.get("/api/messages", query_string={"direction": "inbound"}, headers=auth).get_json()
        return log["messages"]

    [media_message] = wait_for(received, message="the inbound image")
    batch = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": ["919876543211", "919876543212"], "message": BULK_TEXT, "delay": 0},
        headers=auth,
    ).get_json()
    # Nothing listens on port 9: the test event's one attempt fails at once (no retries follow).
    hook = {"url": f"http://127.0.0.1:9/{HOOK_PATH}", "sessionId": session_id, "events": ["session.disconnected"]}
    webhook = _ok(client.post("/api/webhooks", json=hook, headers=auth), 201)
    _ok(client.post(f"/api/webhooks/{webhook['id']}/test", headers=auth), 202)
    [delivery] = wait_for(
        lambda: [
            d
            for d in client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=auth).get_json()["deliveries"]
            if d["attempts"]
        ],
        message="the test delivery's attempt",
    )
    key = _ok(client.post("/api/keys", json={"name": KEY_NAME}, headers=auth), 201)
    _ok(client.put(f"{base}/contacts/{CONTACT}", json={"name": CONTACT_NAME}, headers=auth), 201)
    group = _ok(
        client.post(f"{base}/groups", json={"name": GROUP_NAME, "participants": ["919876543213"]}, headers=auth),
        201,
    )["group"]

    intruder = make_account(plan="enterprise")
    intruder_session = pair_session(client, intruder, phone="919800000002")
    return {
        "owner": owner,
        "intruder": intruder,
        "intruder_session": intruder_session,
        "ids": {
            "session": session_id,
            "message": media_message["messageId"],
            "sent_message": message_id,
            "batch": batch["batchId"],
            "webhook": webhook["id"],
            "webhook_secret_hint": webhook["secretHint"],
            "delivery": delivery["id"],
            "key": key["id"],
            "phone": CONTACT,
            "group": group["id"],
        },
        "credentials": {
            "login token": intruder.headers,
            "live API key": {"Authorization": f"Bearer {_key(client, intruder)}"},
            "key limited to own session": {"X-Api-Key": _key(client, intruder, sessionIds=[intruder_session])},
            "test key": {"X-Api-Key": _key(client, intruder, mode="test")},
            "no credentials": {},
        },
    }


def id_routes(app) -> tuple[list, list]:
    """(route, method) pairs whose URL names something, and rules this file cannot fill."""
    routes, unknown = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, sorted(r.methods))):
        if not rule.arguments or rule.endpoint in NOT_ACCOUNT_SCOPED:
            continue
        missing = rule.arguments - ID_ARGUMENTS.keys()
        if missing:
            unknown.append(f"{rule.rule} ({', '.join(sorted(missing))})")
            continue
        routes.extend((rule, method) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return routes, unknown


# The action a route with an <action> takes: the most harmful one there is.
ACTIONS = {
    "dashboard.session_action": "delete",
    "sessions.group_participants_change": "remove",
    "selfhosted.groups_participants_change": "remove",
}


def _value(rule, name: str, ids: dict, made_up: bool) -> str:
    if name == "action":
        return ACTIONS[rule.endpoint]
    return str(uuid.uuid4()) if made_up and name in OWNED else ids[ID_ARGUMENTS[name]]


def _url(rule, ids: dict, *, made_up: bool = False) -> str:
    values = {name: _value(rule, name, ids, made_up) for name in rule.arguments}
    url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values[m.group(1)], rule.rule)
    if rule.endpoint.startswith("selfhosted.") and "/whatsapp-sessions" not in rule.rule:
        # The self-hosted gateway's session routes name their session in the query (or by the key).
        url += f"?sessionId={uuid.uuid4() if made_up else ids['session']}"
    return url


def _answer(response) -> tuple[int, str | None]:
    """The status and error code (the native `code`, or a dialect's `error.code`, upper case)."""
    body = response.get_json(silent=True) or {}
    code = body["error"].get("code") if isinstance(body.get("error"), dict) else body.get("code")
    return response.status_code, code.upper() if isinstance(code, str) else code


def _is_api(rule) -> bool:
    """A JSON API route: /api/, or another product's API (a CSRF-exempt blueprint: bearer keys, never cookies)."""
    exempt = {blueprint.name for blueprint in csrf._exempt_blueprints} - {"simulator"}
    return rule.rule.startswith("/api/") or rule.endpoint.partition(".")[0] in exempt


def _leaks(response) -> list[str]:
    text = response.get_data(as_text=True)
    return [marker for marker in MARKERS if marker in text]


def test_every_id_route_is_in_the_matrix(app):
    routes, unknown = id_routes(app)
    assert not unknown, f"routes with ids this matrix cannot fill; add them to ID_ARGUMENTS: {unknown}"
    # A floor, so a broken lookup cannot pass by finding nothing (56 route-method pairs when written).
    assert len(routes) >= 56


def test_another_user_gets_404_on_every_route_that_names_the_owners_things(app, client, world, runtime):
    routes, unknown = id_routes(app)
    assert not unknown
    ids, failures, checked = world["ids"], [], 0
    for rule, method in routes:
        if not _is_api(rule):
            continue
        for credential, headers in world["credentials"].items():
            real = client.open(_url(rule, ids), method=method, json=BODY, headers=headers)
            twin = client.open(_url(rule, ids, made_up=True), method=method, json=BODY, headers=headers)
            checked += 1
            status, code = _answer(real)
            problem = None
            if _leaks(real):
                problem = f"leaks {_leaks(real)}"
            elif (status, code) != _answer(twin):
                problem = f"{status} {code}, but a made-up id gets {_answer(twin)}"
            elif credential in ("login token", "live API key") and (status != 404 or not code.endswith("NOT_FOUND")):
                problem = f"{status} {code}, not 404 ..._NOT_FOUND"
            elif credential == "no credentials" and status not in (401, 404):
                problem = f"{status} {code} without credentials"
            elif credential in ("key limited to own session", "test key") and not (
                status == 404 or (status == 403 and code in CAPABILITY_CODES)
            ):
                problem = f"{status} {code}, not 404 (or 403 for what the key may never do)"
            if problem:
                failures.append(f"{method} {rule.rule} with {credential}: {problem}")
    assert not failures, "\n".join(failures)
    assert checked >= 5 * 37
    _assert_owner_untouched(client, world, runtime)


def test_another_dashboard_user_gets_404_on_every_page_and_action_that_names_the_owners_things(app, client, world):
    routes, _ = id_routes(app)
    browser = app.test_client()
    intruder = DashboardUser(browser, world["intruder"])
    ids, failures = world["ids"], []
    dashboard_routes = [(rule, method) for rule, method in routes if not _is_api(rule)]
    assert len(dashboard_routes) >= 19
    for rule, method in dashboard_routes:
        for htmx in (True, False):
            headers = {"X-CSRFToken": intruder.csrf} | ({"HX-Request": "true"} if htmx else {})
            real = browser.open(_url(rule, ids), method=method, data=FORM, headers=headers)
            twin = browser.open(_url(rule, ids, made_up=True), method=method, data=FORM, headers=headers)
            if real.status_code != 404 or twin.status_code != 404 or _leaks(real):
                failures.append(f"{method} {rule.rule} (htmx={htmx}): {real.status_code} {_leaks(real)}")
    assert not failures, "\n".join(failures)
    pages = ["/sessions", "/messages", "/bulk", "/stats", "/keys", "/webhooks", "/account"]
    pages += [f"/messages?session={ids['session']}", f"/messages?q={TEXT[6:-1]}", "/messages?status=failed"]
    pages += [f"/messages?before={ids['message']}", f"/messages?after={ids['sent_message']}"]
    for page in pages:
        response = browser.get(page)
        assert response.status_code in (200, 400) and not _leaks(response), page
    _assert_owner_untouched(client, world)


def test_lists_and_filters_never_show_another_users_things(client, world):
    owner_session, ids = world["ids"]["session"], world["ids"]
    for credential, headers in world["credentials"].items():
        if credential == "no credentials":
            continue
        for url in (
            "/api/sessions",
            "/api/messages",
            f"/api/messages?sessionId={owner_session}",
            f"/api/messages?chat={CONTACT}",
            "/api/messages/failed",
            "/api/messages/stats",
            "/api/webhooks",
            "/api/keys",
            "/api/me",
            "/api/quota",
            "/api/whatsapp/status",
            "/api/whatsapp/qr",
        ):
            response = client.get(url, headers=headers)
            assert response.status_code < 500 and not _leaks(response), (credential, url)
            body = response.get_json()
            if response.status_code == 200 and url.startswith("/api/messages") and "stats" not in url:
                assert body.get("total", body.get("count")) == 0, (credential, url)  # the intruder sent nothing
        cursor = client.get(f"/api/messages?cursor={ids['sent_message']}", headers=headers)
        assert _answer(cursor) == (400, "INVALID_CURSOR"), credential
        faults = client.get(f"/api/simulator/faults?sessionId={owner_session}", headers=headers)
        assert faults.status_code == 404, credential
        key = client.post("/api/keys", json={"name": "x", "sessionIds": [owner_session]}, headers=headers)
        expected = (400, "INVALID_SESSION_IDS") if credential in ("login token", "live API key") else (403,)
        assert _answer(key)[: len(expected)] == expected and not _leaks(key), credential
        hook = client.post("/api/webhooks", json={"url": BODY["url"], "sessionId": owner_session}, headers=headers)
        assert hook.status_code in (403, 404) and not _leaks(hook), credential


def _assert_owner_untouched(client, world, runtime=None) -> None:
    """Nothing the intruder tried changed, deleted or sent anything of the owner's."""
    auth, ids = world["owner"].headers, world["ids"]
    base = f"/api/sessions/{ids['session']}"
    session = _ok(client.get(base, headers=auth))
    assert (session["name"], session["status"], session["phone"]) == (SESSION_NAME, "connected", OWNER_PHONE)
    assert _ok(client.get(f"/api/messages/{ids['message']}", headers=auth))["messageId"] == ids["message"]
    webhook = _ok(client.get(f"/api/webhooks/{ids['webhook']}", headers=auth))["webhook"]
    assert (webhook["enabled"], webhook["secretHint"]) == (True, ids["webhook_secret_hint"])
    deliveries = _ok(client.get(f"/api/webhooks/{ids['webhook']}/deliveries", headers=auth))["deliveries"]
    [test_delivery] = [d for d in deliveries if d["event"] == "webhook.test"]
    assert (test_delivery["id"], test_delivery["attempts"]) == (ids["delivery"], 1)
    [key] = [k for k in _ok(client.get("/api/keys", headers=auth))["keys"] if k["id"] == ids["key"]]
    assert key["revoked"] is False
    assert _ok(client.get(f"{base}/contacts/{CONTACT}", headers=auth))["contact"]["name"] == CONTACT_NAME
    assert _ok(client.get(f"{base}/groups/{ids['group']}", headers=auth))["group"]["name"] == GROUP_NAME
    assert _ok(client.get(f"/api/whatsapp/bulk-send/{ids['batch']}", headers=auth))["total"] == 2
    if runtime is not None:
        sent_to = sorted(m["to"] for m in runtime.engine_host.engine.outbox(ids["session"]))
        assert sent_to == ["919876543210", "919876543211", "919876543212"]


# Live events: Socket.IO rooms


def _drain(socket) -> list[dict]:
    return [packet for packet in socket.get_received() if packet["name"] != "connect"]


def test_socketio_never_delivers_another_users_events(app, client, world):
    owner, intruder, ids = world["owner"], world["intruder"], world["ids"]
    owner_socket = socketio.test_client(app, flask_test_client=client, auth={"token": owner.token})
    live_key = world["credentials"]["live API key"]["Authorization"].removeprefix("Bearer ")
    limited_key = world["credentials"]["key limited to own session"]["X-Api-Key"]
    dashboard = app.test_client()
    DashboardUser(dashboard, intruder)
    intruders = {
        "login token": socketio.test_client(app, flask_test_client=client, auth={"token": intruder.token}),
        "token in the URL": socketio.test_client(app, flask_test_client=client, query_string=f"token={intruder.token}"),
        "live API key": socketio.test_client(app, flask_test_client=client, auth={"apiKey": live_key}),
        "dashboard cookie": socketio.test_client(app, flask_test_client=dashboard),
    }
    assert owner_socket.is_connected() and all(s.is_connected() for s in intruders.values())
    # A key limited to some sessions would hear all of its user's sessions in the user's room: refused.
    assert not socketio.test_client(app, flask_test_client=client, auth={"apiKey": limited_key}).is_connected()
    # Nor does naming the owner's session or user id in the handshake get anyone into their room.
    sneaky = socketio.test_client(
        app,
        flask_test_client=client,
        auth={"token": intruder.token, "sessionId": ids["session"], "userId": owner.user_id},
        query_string=f"sessionId={ids['session']}&room=user:{owner.user_id}",
    )
    intruders["naming the owner's ids"] = sneaky
    for socket in (owner_socket, *intruders.values()):
        _drain(socket)

    auth, base = owner.headers, f"/api/sessions/{ids['session']}"
    client.post(f"{base}/send", json={"to": "919876543214", "message": TEXT}, headers=auth)
    client.post(
        f"/api/simulator/sessions/{ids['session']}/inbound",
        json={"from": "919811112222", "message": TEXT},
        headers=auth,
    )
    client.post(
        "/api/whatsapp/bulk-send", json={"contacts": ["919876543215"], "message": BULK_TEXT, "delay": 0}, headers=auth
    )
    client.put(f"/api/simulator/faults?sessionId={ids['session']}", json={"disconnect": True}, headers=auth)
    seen: set[str] = set()

    def owner_saw(*names: str) -> bool:
        seen.update(packet["name"] for packet in _drain(owner_socket))
        return set(names) <= seen

    wait_for(lambda: owner_saw("message_status", "message", "bulk_progress", "reconnecting"), message=str(seen))
    client.delete(f"/api/simulator/faults?sessionId={ids['session']}", headers=auth)
    wait_for(lambda: owner_saw("connected"), message="connected again")
    for name, socket in intruders.items():
        assert _drain(socket) == [], name


# Live events: Server-Sent Events, over real HTTP from `python app.py`


class _Stream:
    """The event names and data an SSE response carries, read on a thread."""

    def __init__(self, url: str, headers: dict) -> None:
        self.response = requests.get(url, headers=headers, stream=True, timeout=15)
        self.events: list[tuple[str, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event:
                    self.events.append((event, line.removeprefix("data: ")))
        except Exception:  # noqa: BLE001 - closed under the reader: the stream is over
            pass


def _live_pair(base_url: str, headers: dict, phone: str) -> str:
    session_id = requests.post(f"{base_url}/api/sessions", json={"name": "S"}, headers=headers).json()["sessionId"]
    qr = requests.get(f"{base_url}/api/sessions/{session_id}/qr", headers=headers).json()
    assert requests.post(f"{base_url}{urlsplit(decode_qr(qr['qrCode'])).path}", json={"phone": phone}).ok
    return session_id


@pytest.mark.live_server
def test_sse_streams_never_carry_another_users_events(tmp_path):
    with embedded_server(tmp_path, STREAM_HEARTBEAT_SECONDS="0.5") as base_url:

        def account(email: str) -> dict:
            body = requests.post(f"{base_url}/api/register", json={"email": email, "password": "correct horse"})
            return {"Authorization": f"Bearer {body.json()['token']}"}

        owner, intruder = account("sse-owner@example.com"), account("sse-intruder@example.com")
        owner_session = _live_pair(base_url, owner, OWNER_PHONE)
        intruder_session = _live_pair(base_url, intruder, "919800000002")
        refused = requests.get(f"{base_url}/api/sessions/{owner_session}/stream", headers=intruder, timeout=5)
        assert (refused.status_code, refused.json()["code"]) == (404, "SESSION_NOT_FOUND")
        # Resuming with an event id of the owner's stream reaches nothing either.
        resumed = requests.get(
            f"{base_url}/api/sessions/{owner_session}/stream",
            headers={**intruder, "Last-Event-ID": "0-0"},
            timeout=5,
        )
        assert resumed.status_code == 404
        owner_stream = _Stream(f"{base_url}/api/sessions/{owner_session}/stream", owner)
        intruder_stream = _Stream(f"{base_url}/api/sessions/{intruder_session}/stream", intruder)
        try:
            requests.post(
                f"{base_url}/api/sessions/{owner_session}/send",
                json={"to": "919876543210", "message": TEXT},
                headers=owner,
            )
            requests.post(
                f"{base_url}/api/simulator/sessions/{owner_session}/inbound",
                json={"from": "919811112222", "message": TEXT},
                headers=owner,
            )
            wait_for(lambda: {"message_status", "message"} <= {e for e, _ in owner_stream.events}, timeout=15)
            # The intruder's stream is alive: its own session's event arrives, and nothing else did.
            requests.post(
                f"{base_url}/api/simulator/sessions/{intruder_session}/inbound",
                json={"from": "919811113333", "message": "their own"},
                headers=intruder,
            )
            wait_for(lambda: intruder_stream.events, timeout=15)
            assert [event for event, _ in intruder_stream.events] == ["message"]
            assert all(owner_session not in data and TEXT not in data for _, data in intruder_stream.events)
        finally:
            owner_stream.response.close()
            intruder_stream.response.close()
