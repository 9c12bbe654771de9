"""The embedded server as a real process, driven by the doc's own client and a real Socket.IO client."""

import threading
import time

import pytest
import requests
import socketio

from tests.clients.wamessenger import WAMessenger
from tests.helpers import decode_qr, wait_for, without_cursor
from tests.live import embedded_server

pytestmark = pytest.mark.live_server

PASSWORD = "securepassword123"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("live")) as base_url:
        yield base_url


def _register(live: str, email: str) -> str:
    response = requests.post(f"{live}/api/register", json={"email": email, "password": PASSWORD}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def test_the_documented_python_client_runs_through_wait_for_connection(live, monkeypatch):
    _register(live, "doc-client@example.com")
    monkeypatch.setattr(WAMessenger, "BASE_URL", f"{live}/api")
    wa = WAMessenger()
    assert wa.login("doc-client@example.com", PASSWORD)["message"] == "Login successful"
    assert wa.create_session("My Bot")["status"] == "connecting"
    qr_data = wa.get_qr_code()
    assert qr_data["qrCode"].startswith("data:image/png;base64,")

    def phone_scans() -> None:
        time.sleep(0.5)  # the person takes a moment to point the phone at the screen
        requests.post(decode_qr(qr_data["qrCode"]), json={"phone": "919876543210"}, timeout=10)

    scanner = threading.Thread(target=phone_scans)
    scanner.start()
    assert wa.wait_for_connection(max_attempts=10, interval=1) is True
    scanner.join()


def test_a_socketio_client_sees_qr_then_connected_for_its_own_sessions_only(live):
    owner_token = _register(live, "socket-owner@example.com")
    other_token = _register(live, "socket-other@example.com")
    seen: list[tuple[str, dict]] = []
    others_seen: list[tuple[str, dict]] = []
    owner, other = socketio.Client(), socketio.Client()
    for client, sink in ((owner, seen), (other, others_seen)):
        for name in ("qr", "connected", "disconnected", "reconnecting"):
            client.on(name, lambda data, name=name, sink=sink: sink.append((name, data)))
    owner.connect(live, auth={"token": owner_token}, wait_timeout=10)
    other.connect(live, auth={"token": other_token}, wait_timeout=10)
    try:
        headers = {"Authorization": f"Bearer {owner_token}"}
        session_id = requests.post(f"{live}/api/sessions", json={}, headers=headers, timeout=10).json()["sessionId"]
        qr_event = wait_for(lambda: next((d for n, d in seen if n == "qr"), None), message="qr event")
        assert qr_event["sessionId"] == session_id
        requests.post(decode_qr(qr_event["qrCode"]), json={"phone": "447700900123"}, timeout=10)
        wait_for(lambda: any(n == "connected" for n, _ in seen), message="connected event")
        names = [n for n, _ in seen]
        assert names.index("qr") < names.index("connected")
        assert without_cursor(dict(seen)["connected"]) == {"sessionId": session_id, "phone": "447700900123"}
        # The other user's own session is a barrier: once its QR arrived, a leak would have too.
        other_headers = {"Authorization": f"Bearer {other_token}"}
        own = requests.post(f"{live}/api/sessions", json={}, headers=other_headers, timeout=10).json()["sessionId"]
        wait_for(lambda: any(n == "qr" for n, _ in others_seen), message="the other user's own qr")
        assert {data["sessionId"] for _, data in others_seen} == {own}
    finally:
        owner.disconnect()
        other.disconnect()


def test_a_socketio_client_with_a_forged_token_is_refused(live):
    client = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(live, auth={"token": "forged"}, wait_timeout=10)
    assert not client.connected


def test_the_documented_socketio_snippet_connects_from_loopback_without_credentials(live):
    """WAMessenger's example: io(url, {transports: ['websocket']}), no token; then a legacy
    script's /api/whatsapp/init. It hears the legacy default session's qr and connected."""
    seen: list[tuple[str, dict]] = []
    client = socketio.Client()
    for name in ("qr", "connected"):
        client.on(name, lambda data, name=name: seen.append((name, data)))
    client.connect(live, transports=["websocket"], wait_timeout=10)
    try:
        session_id = requests.post(f"{live}/api/whatsapp/init", timeout=10).json()["sessionId"]
        qr_event = wait_for(lambda: next((d for n, d in seen if n == "qr"), None), message="qr event")
        assert qr_event["sessionId"] == session_id and qr_event["qrCode"].startswith("data:image/png;base64,")
        requests.post(decode_qr(qr_event["qrCode"]), json={"phone": "919876543210"}, timeout=10)
        connected = wait_for(lambda: next((d for n, d in seen if n == "connected"), None), message="connected")
        assert without_cursor(connected) == {"sessionId": session_id, "phone": "919876543210"}
    finally:
        client.disconnect()
