import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask_socketio import SocketIOTestClient

from extensions import socketio
from tests.helpers import decode_qr, wait_for, without_cursor

REPO = Path(__file__).resolve().parents[1]


def _socket(app, client, token: str | None, *, query: bool = False) -> SocketIOTestClient:
    if query:
        return socketio.test_client(app, flask_test_client=client, query_string=f"token={token}")
    return socketio.test_client(app, flask_test_client=client, auth={"token": token} if token else None)


def _names(received: list[dict]) -> list[str]:
    return [packet["name"] for packet in received]


@pytest.mark.parametrize("config_overrides", [{"TRUSTED_NETWORKS": []}])
def test_unauthenticated_or_forged_connections_are_refused(app, client):
    assert not _socket(app, client, None).is_connected()
    assert not _socket(app, client, "not-a-jwt").is_connected()


def test_a_legacy_script_on_a_trusted_network_hears_only_the_default_sessions_events(app, client, runtime, account):
    """The WAMessenger example connects without credentials: from loopback it hears the legacy
    default session (made by /api/whatsapp/init) and nobody else's."""
    legacy = _socket(app, client, None)
    assert legacy.is_connected()
    client.post("/api/sessions", json={"name": "Someone else's"}, headers=account.headers)
    default_id = client.post("/api/whatsapp/init").get_json()["sessionId"]
    received: list[dict] = []

    def saw(name: str) -> bool:
        received.extend(legacy.get_received())
        return name in _names(received)

    wait_for(lambda: saw("qr"), message="the default session's qr event")
    qr_event = next(p["args"][0] for p in received if p["name"] == "qr")
    assert qr_event["sessionId"] == default_id
    client.post(urlsplit(decode_qr(qr_event["qrCode"])).path)
    wait_for(lambda: saw("connected"), message="the default session's connected event")
    assert {p["args"][0]["sessionId"] for p in received} == {default_id}


def test_the_owner_sees_qr_then_connected_and_nobody_else_sees_anything(app, client, runtime, make_account):
    owner, other = make_account(), make_account()
    owner_socket = _socket(app, client, owner.token)
    other_socket = _socket(app, client, other.token, query=True)
    assert owner_socket.is_connected() and other_socket.is_connected()

    session_id = client.post("/api/sessions", json={}, headers=owner.headers).get_json()["sessionId"]
    received: list[dict] = []

    def saw(name: str) -> bool:
        received.extend(owner_socket.get_received())
        return name in _names(received)

    wait_for(lambda: saw("qr"), message="qr event")
    qr_event = next(p["args"][0] for p in received if p["name"] == "qr")
    assert qr_event["sessionId"] == session_id
    client.post(urlsplit(decode_qr(qr_event["qrCode"])).path, json={"phone": "4915112345678"})
    wait_for(lambda: saw("connected"), message="connected event")
    names = [n for n in _names(received) if n in {"qr", "connected"}]
    assert names.index("qr") < names.index("connected")
    connected = next(p["args"][0] for p in received if p["name"] == "connected")
    assert without_cursor(connected) == {"sessionId": session_id, "phone": "4915112345678"}
    assert other_socket.get_received() == []


def test_a_disconnect_fault_shows_reconnecting_then_connected_live(app, client, account, shop):
    owner_socket = _socket(app, client, account.token)
    faults_url = f"/api/simulator/faults?sessionId={shop}"
    received: list[dict] = []

    def saw(name: str) -> bool:
        received.extend(owner_socket.get_received())
        return name in _names(received)

    switched = client.put(faults_url, json={"disconnect": True}, headers=account.headers)
    assert switched.get_json() == {"scope": shop, "faults": ["disconnect"]}
    wait_for(lambda: saw("reconnecting"), message="reconnecting event")
    status = client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()
    assert status["status"] == "reconnecting"
    client.delete(faults_url, headers=account.headers)
    wait_for(lambda: saw("connected"), message="connected again")
    assert client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()["status"] == ("connected")


# Which processes serve live clients with greenlets: only one that gevent has patched (the web
# role under gunicorn's gevent worker); everything else keeps threads, and neonize refuses green.
GREEN_PROCESS = """
from gevent import monkey

monkey.patch_all()
import sys

sys.path.insert(0, sys.argv[1])
"""


def _run_green(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "green.py"
    script.write_text(GREEN_PROCESS + code)
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": ""}
    return subprocess.run(
        [sys.executable, str(script), str(REPO)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_threads_serve_live_clients_in_a_process_gevent_has_not_patched(app):
    """gevent is installed, yet this process (like the engine host's and `python app.py`) is not patched."""
    assert app.extensions["socketio"].async_mode == "threading"


def test_greenlets_serve_live_clients_in_a_process_gevent_has_patched(tmp_path):
    done = _run_green("from app import create_app\nprint(create_app().extensions['socketio'].async_mode)\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gevent"]


def test_neonize_refuses_to_load_in_a_process_gevent_has_patched(tmp_path):
    done = _run_green("import engines.neonize\n", tmp_path)
    assert done.returncode != 0
    assert "neonize cannot run in a process patched by gevent" in done.stderr


@pytest.mark.parametrize("config_overrides", [{"PROXY_FIX_X_FOR": 1}])
@pytest.mark.parametrize(("client_address", "accepted"), [("203.0.113.5", False), ("127.0.0.1", True)])
def test_behind_a_proxy_the_legacy_snippet_is_trusted_by_the_clients_address(app, client, client_address, accepted):
    """Engine.IO's polling handshake by hand, through the whole WSGI stack, from a client
    the proxy names in X-Forwarded-For (the proxy itself is on loopback, a trusted network)."""
    headers = {"X-Forwarded-For": client_address}
    opening = client.get("/socket.io/?EIO=4&transport=polling", headers=headers)
    assert opening.status_code == 200
    session = f"/socket.io/?EIO=4&transport=polling&sid={json.loads(opening.data[1:])['sid']}"
    assert client.post(session, data="40", headers=headers).data == b"OK"  # join, without credentials
    answer = client.get(session, headers=headers).get_data(as_text=True)
    assert answer.startswith("40{" if accepted else "44{"), answer
