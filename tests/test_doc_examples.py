"""The WAMessenger documentation's own curl, Node.js and Python snippets, run unchanged
(base URL, token and session id filled in) against `python app.py`."""

import contextlib
import io
import json
import shutil
import subprocess

import pytest
import requests

from tests.clients import doc_snippets as doc
from tests.helpers import decode_qr, wait_for
from tests.live import embedded_server

pytestmark = pytest.mark.live_server

NODE = shutil.which("node")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("docs")) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def owner(live):
    """A registered owner with a paired session, as the doc's flow leaves a user."""
    email = "docs-owner@example.com"
    token = requests.post(
        f"{live}/api/register", json={"email": email, "password": "securepassword123"}, timeout=10
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    session_id = requests.post(f"{live}/api/sessions", json={"name": "Docs"}, headers=headers, timeout=10).json()[
        "sessionId"
    ]
    qr = requests.get(f"{live}/api/sessions/{session_id}/qr", headers=headers, timeout=10).json()
    requests.post(decode_qr(qr["qrCode"]), timeout=10)
    return {"token": token, "session_id": session_id, "headers": headers}


@pytest.fixture(scope="module")
def legacy(live):
    """The legacy default session, initialised and paired with the doc's curl call."""
    init = _curl(live, doc.CURL_LEGACY_INIT)
    assert init["success"] is True
    qr = requests.get(f"{live}/api/whatsapp/qr", timeout=10).json()
    requests.post(decode_qr(qr["qrCode"]), json={"phone": "919800000001"}, timeout=10)
    assert requests.get(f"{live}/api/whatsapp/status", timeout=10).json()["status"] == "connected"


def _fill(snippet: str, live: str, **values: str) -> str:
    text = snippet.replace(doc.DOC_BASE, live)
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _curl(live: str, snippet: str, **values: str) -> dict:
    result = subprocess.run(
        ["bash", "-c", _fill(snippet, live, **values) + " -s"], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(result.stdout)


def _node(live: str, snippet: str, prelude: str = "", epilogue: str = "", **values: str) -> str:
    if NODE is None:
        pytest.skip("node is not installed")
    script = prelude + _fill(snippet, live, **values) + epilogue
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def _python(live: str, snippet: str, **values: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(_fill(snippet, live, **values), {"token": values.get("__token__")})  # noqa: S102 - the doc's own code
    return output.getvalue().strip()


def test_curl_send_to_a_session(live, owner):
    body = _curl(live, doc.CURL_SESSION_SEND, **{"{sessionId}": owner["session_id"], "YOUR_TOKEN": owner["token"]})
    assert body["success"] is True
    assert body["message"] == "Message sent successfully"


def test_node_send_to_a_session(live, owner):
    output = _node(
        live,
        doc.NODE_SESSION_SEND,
        prelude=f"const token = '{owner['token']}';\n",
        **{"session-uuid": owner["session_id"]},
    )
    assert output == "Message sent!"


def test_python_send_to_a_session(live, owner):
    output = _python(
        live, doc.PYTHON_SESSION_SEND, **{"session-uuid": owner["session_id"], "__token__": owner["token"]}
    )
    assert output == "Sent!"


def test_curl_and_node_legacy_send(live, legacy):
    body = _curl(live, doc.CURL_LEGACY_SEND)
    assert (body["success"], body["message"]) == (True, "Message sent successfully")
    output = _node(live, doc.NODE_LEGACY_SEND, epilogue="\nconsole.log((await response.json()).success);")
    assert output == "true"


def test_bulk_send_in_curl_node_and_python(live, legacy):
    body = _curl(live, doc.CURL_BULK)
    assert (body["total"], body["sent"], body["failed"]) == (3, 3, 0)
    assert [r["status"] for r in body["results"]] == ["Sent", "Sent", "Sent"]
    assert _node(live, doc.NODE_BULK) == "Sent: 3/3, Failed: 0"
    assert _python(live, doc.PYTHON_BULK) == "Sent: 3/3, Failed: 0"


def test_stats_and_failed_messages_have_the_documented_shape(live, owner):
    headers = owner["headers"]
    failed_send = requests.post(
        f"{live}/api/sessions/{owner['session_id']}/send",
        json={"to": "919876540000", "message": "Hello, this is a test message"},
        headers=headers,
        timeout=10,
    ).json()
    assert failed_send["success"] is False
    failed = requests.get(f"{live}/api/messages/failed?limit=5", headers=headers, timeout=10).json()
    assert failed["success"] is True and failed["count"] >= 1
    assert set(failed["messages"][0]) >= {"id", "recipient", "error", "timestamp", "message"}

    def stats_settled():
        stats = requests.get(f"{live}/api/messages/stats", headers=headers, timeout=10).json()
        return stats["totals"]["failed"] >= 1 and stats["totals"]["sent"] >= 1 and stats

    stats = wait_for(stats_settled, timeout=15, message="aggregated stats")
    assert stats["success"] is True
    assert stats["totals"]["total"] == stats["totals"]["sent"] + stats["totals"]["failed"]
    assert len(stats["chart"]["labels"]) == 7
    assert stats["chart"]["sent"][-1] == stats["totals"]["sent"]
