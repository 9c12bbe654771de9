"""schemathesis against a live `python app.py`, with every one of its default checks: zero failures.

The server runs as in production (the embedded default) with a paired simulated session.
schemathesis reads GET /api/openapi.json and runs its phases (examples, coverage, fuzzing,
stateful) with all of its checks, as a user with a JWT and again with an API key in
X-Api-Key. tests/openapi_fuzz_hooks.py makes valid data really valid (phone numbers that
exist, real media files) and keeps the run's own session, key and webhook alive.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from tests.helpers import decode_qr
from tests.live import ROOT, embedded_server

pytestmark = [pytest.mark.fuzz, pytest.mark.live_server]

PASSWORD = "correct horse battery"
log = logging.getLogger(__name__)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (7, 94, 84)).save(out, format="PNG")
    return out.getvalue()


MEDIA = {
    "image": ("image/png", _png()),
    "sticker": ("image/png", _png()),
    "video": ("video/mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)),
    "audio": ("audio/ogg", b"OggS\x00\x02" + bytes(64)),
    "document": ("application/pdf", b"%PDF-1.4\n%wagate fuzz\n"),
}


class Receiver:
    """On loopback: GET /media/<kind> serves a real file of that kind; any POST (a webhook) gets 200."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind = self.path.rsplit("/", 1)[-1]
                mimetype, data = MEDIA.get(kind, MEDIA["image"])
                self._answer(200, mimetype, data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(200, "application/json", b'{"ok": true}')

            def _answer(self, status: int, mimetype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", mimetype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url, self.headers = base_url, {"Authorization": f"Bearer {token}"} if token else {}

    def __call__(self, method: str, path: str, expected: int | tuple[int, ...] = 200, **kwargs) -> dict:
        response = requests.request(method, self.base_url + path, headers=self.headers, timeout=30, **kwargs)
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert response.status_code in allowed, (method, path, response.status_code, response.text)
        return response.json()


def _register(api: Api, email: str) -> str:
    return api("POST", "/api/register", 201, json={"email": email, "password": PASSWORD})["token"]


def _qr_path(api: Api, session_id: str) -> str:
    """Where the session's QR code points: /sim/pair/<sessionId>/<token>."""
    return urlsplit(decode_qr(api("GET", f"/api/sessions/{session_id}/qr")["qrCode"])).path


def _pair(api: Api, session_id: str) -> None:
    requests.post(
        api.base_url + _qr_path(api, session_id), json={"phone": "919812345678"}, timeout=30
    ).raise_for_status()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    receiver = Receiver()
    data_dir = tmp_path_factory.mktemp("fuzz")
    environment = {
        "AUTH_RATE_LIMIT": "100000 per 15 minutes",
        "API_RATE_LIMIT": "1000000 per 15 minutes",
        "STATUS_RATE_LIMIT": "1000000 per minute",
        # The fuzzer's URLs are all rewritten to the loopback receiver (see the hooks).
        "ALLOW_PRIVATE_URLS": "true",
        "BULK_MIN_DELAY_MS": "0",
        "BULK_WAIT_SECONDS": "2",
        "SEND_WAIT_SECONDS": "3",
        "SIMULATOR_TIMEOUT_SECONDS": "1",
        "SIMULATOR_RECEIPT_SECONDS": "0.2",
        "STREAM_HEARTBEAT_SECONDS": "0.5",
        "GROUP_CALL_WAIT_SECONDS": "5",
        "NUMBER_CHECK_WAIT_SECONDS": "5",
        "PAIR_CODE_WAIT_SECONDS": "3",
        "LOG_LEVEL": "WARNING",
        # The send governor (services/governor/queue.py) paces sends like a person; the fuzzer may not wait.
        "PACE_MIN_GAP_SECONDS": "0",
        "PACE_JITTER_SECONDS": "0",
        "PACE_PER_MINUTE": "1000000",
        "PACE_PER_DAY": "1000000",
        "PACE_WARMUP": "",
        "GOVERNOR_MIN_SAMPLE": "1000000",
        "GOVERNOR_MAX_COLD_PER_DAY": "0",
    }
    try:
        with embedded_server(data_dir, **environment) as base_url:
            yield base_url, data_dir, receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def context(live) -> dict:
    """A non-admin Enterprise user with a paired session, a message with media, a group,
    webhooks with a delivery, API keys and a finished batch; plus spares for the destructive routes."""
    base_url, data_dir, receiver = live
    anonymous = Api(base_url)
    _register(anonymous, "first-admin@example.com")  # the first account is the admin: not the fuzzer
    email = "fuzzer@example.com"
    token = _register(anonymous, email)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "users", "set-plan", email, "enterprise"],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        | {"DATA_DIR": str(data_dir)},
        check=True,
        capture_output=True,
    )
    api = Api(base_url, token)
    session_id = api("POST", "/api/sessions", 201, json={"name": "Fuzzed"})["sessionId"]
    _pair(api, session_id)
    spare_session = api("POST", "/api/sessions", 201, json={"name": "Spare"})["sessionId"]
    doomed_session = api("POST", "/api/sessions", 201, json={"name": "Doomed"})["sessionId"]
    png = base64.b64encode(MEDIA["image"][1]).decode()
    image = {"to": "919876543210", "image": f"data:image/png;base64,{png}"}
    message = api("POST", f"/api/sessions/{session_id}/send", (200, 202), json=image)
    members = {"participants": ["919876543210"]}
    group = api("POST", f"/api/sessions/{session_id}/groups", 201, json={"name": "Fuzz", **members})
    doomed_group = api("POST", f"/api/sessions/{session_id}/groups", 201, json={"name": "Doomed", **members})
    poll = {"question": "Lunch?", "options": ["Yes", "No"]}
    poll_message = api(
        "POST", f"/api/sessions/{session_id}/send", (200, 202), json={"to": "919876543210", "poll": poll}
    )
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = {"to": "919876543210", "message": "Later", "sendAt": tomorrow}
    scheduled = api("POST", f"/api/sessions/{session_id}/send", 202, json=later)
    later_batch = {"contacts": ["919876543212"], "message": "Later", "sendAt": tomorrow}
    scheduled_batch = api("POST", "/api/whatsapp/bulk-send", 202, json=later_batch)
    webhook = api("POST", "/api/webhooks", 201, json={"url": f"{receiver.url}/hook"})
    spare = {"url": f"{receiver.url}/spare", "sessionId": spare_session}
    spare_webhook = api("POST", "/api/webhooks", 201, json=spare)
    delivery = api("POST", f"/api/webhooks/{webhook['id']}/test", 202)["delivery"]
    key = api("POST", "/api/keys", 201, json={"name": "fuzz"})
    spare_key = api("POST", "/api/keys", 201, json={"name": "spare"})
    now_batch = {"contacts": ["919876543211"], "message": "Hi", "delay": 0}
    batch = api("POST", "/api/whatsapp/bulk-send", (200, 202), json=now_batch)
    return {
        "baseUrl": base_url,
        "token": token,
        "apiKey": key["key"],
        "apiKeyId": key["id"],
        "spareApiKeyId": spare_key["id"],
        "session": session_id,
        "spareSession": spare_session,
        "doomedSession": doomed_session,
        "doomedToken": _qr_path(api, doomed_session).rsplit("/", 1)[-1],
        "message": message["messageId"],
        "group": group["group"]["id"],
        "doomedGroup": doomed_group["group"]["id"],
        "poll": poll_message["messageId"],
        "pollOptions": poll["options"],
        "webhook": webhook["id"],
        "spareWebhook": spare_webhook["id"],
        "delivery": delivery["id"],
        "batch": batch["batchId"],
        "scheduledMessage": scheduled["messageId"],
        "scheduledBatch": scheduled_batch["batchId"],
        "receiver": receiver.url,
        **{
            name: base64.b64encode(MEDIA[kind][1]).decode()
            for name, kind in (("png", "image"), ("mp4", "video"), ("ogg", "audio"), ("pdf", "document"))
        },
    }


def _config(context: dict, *, auth: str) -> str:
    """schemathesis.toml for one run: its credentials and the ids of what the run works on."""
    credentials = (
        f'[auth.openapi.bearerAuth]\nbearer = "{context["token"]}"\n'
        if auth == "jwt"
        else f'[auth.openapi.apiKeyHeader]\napi_key = "{context["apiKey"]}"\n'
    )
    return f"""
base-url = "{context["baseUrl"]}"
hooks = "tests.openapi_fuzz_hooks"
workers = 4
request-timeout = 20

{credentials}
[parameters]
"path.sessionId" = "{context["session"]}"
"path.messageId" = "{context["message"]}"
"path.groupId" = "{context["group"]}"
"path.webhookId" = "{context["webhook"]}"
"path.deliveryId" = "{context["delivery"]}"
"path.batchId" = "{context["batch"]}"

[[operations]]
include-operation-id = "deleteSession"
parameters = {{ "path.sessionId" = "{context["doomedSession"]}" }}

[[operations]]
include-operation-id = ["simulatorPairPage", "simulatorPair", "simulatorPairCode"]
parameters = {{ "path.sessionId" = "{context["doomedSession"]}", "path.token" = "{context["doomedToken"]}" }}

[[operations]]
include-operation-id = "leaveGroup"
parameters = {{ "path.groupId" = "{context["doomedGroup"]}" }}

[[operations]]
include-operation-id = ["getSimulatorFaults", "setSimulatorFaults", "clearSimulatorFaults"]
parameters = {{ "query.sessionId" = "{context["spareSession"]}" }}

[[operations]]
include-operation-id = ["logoutSession", "disconnectSession", "setSessionPace", "resumeSession"]
parameters = {{ "path.sessionId" = "{context["spareSession"]}" }}

[[operations]]
include-operation-id = ["rescheduleMessage", "cancelMessage"]
parameters = {{ "path.messageId" = "{context["scheduledMessage"]}" }}

[[operations]]
include-operation-id = "legacyBulkCancel"
parameters = {{ "path.batchId" = "{context["scheduledBatch"]}" }}

[[operations]]
include-operation-id = "revokeApiKey"
parameters = {{ "path.keyId" = "{context["spareApiKeyId"]}" }}

[[operations]]
include-operation-id = "deleteWebhook"
parameters = {{ "path.webhookId" = "{context["spareWebhook"]}" }}

[[operations]]
include-operation-id = "streamSessionEvents"
request-timeout = 1
max-stream-events = 1
"""


# Each run's phases and examples per operation: both runs do every phase (examples,
# coverage, fuzzing, stateful), the API-key run with fewer examples per operation. Together
# they take about 3 minutes of the suite; WAGATE_FUZZ_EXAMPLES_SCALE multiplies both for a deeper run.
SCALE = float(os.environ.get("WAGATE_FUZZ_EXAMPLES_SCALE", "1"))
RUNS = {
    "jwt": ("examples,coverage,fuzzing,stateful", round(15 * SCALE)),
    "api-key": ("examples,coverage,fuzzing,stateful", round(6 * SCALE)),
}


def _run(context: dict, tmp_path: Path, auth: str) -> dict:
    """One schemathesis run with every one of its checks; its JSON report."""
    config, report = tmp_path / "schemathesis.toml", tmp_path / "report.json"
    config.write_text(_config(context, auth=auth))
    phases, examples = RUNS[auth]
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run"]
    command += [f"{context['baseUrl']}/api/openapi.json", "--phases", phases, "--max-examples", str(examples)]
    command += ["--seed", os.environ.get("WAGATE_FUZZ_SEED", "20261123")]
    command += ["--report", "json", "--report-json-path", str(report)]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,  # its cache (and the crashes it would replay) stays with this run
        env={**os.environ, "WAGATE_FUZZ_CONTEXT": json.dumps(context), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    # The whole output, for failures whose request bodies would crowd the others out of the message.
    (tmp_path / "schemathesis.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"schemathesis ({seconds:.0f} s; its whole output in {tmp_path / 'schemathesis.log'}):\n"
        f"{result.stdout[-30000:]}\n{result.stderr[-3000:]}"
    )
    outcome = json.loads(report.read_text())
    log.info("schemathesis with %s: %s test cases, %.0f s", auth, outcome["test_cases"]["generated"], seconds)
    return outcome


def _assert_clean(outcome: dict, phases: str, base_url: str) -> None:
    assert outcome["complete"] and outcome["exit_code"] == 0
    assert outcome["failures"] == [] and outcome["errors"] == []
    # Every documented operation but the document itself (schemathesis leaves out the URL it loaded).
    document = requests.get(f"{base_url}/api/openapi.json", timeout=30).json()
    documented = sum(len(item) for item in document["paths"].values()) - 1
    assert outcome["operations"] | {"total": documented, "tested": documented, "errored": 0} == outcome["operations"]
    assert all(outcome["phases"][phase]["status"] == "success" for phase in phases.split(","))


def test_schemathesis_finds_nothing_with_a_jwt(context, tmp_path):
    outcome = _run(context, tmp_path, "jwt")
    _assert_clean(outcome, RUNS["jwt"][0], context["baseUrl"])
    assert outcome["test_cases"]["generated"] > 5000


def test_schemathesis_finds_nothing_with_an_api_key(context, tmp_path):
    outcome = _run(context, tmp_path, "api-key")
    _assert_clean(outcome, RUNS["api-key"][0], context["baseUrl"])
