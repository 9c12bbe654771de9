"""aulm's documented curl examples run with curl against a live `python app.py` (only the
base URL and the key changed), and schemathesis on aulm's OpenAPI document: zero failures."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from tests.live import ROOT, embedded_server
from tests.test_dialect_aulm import QUICK_START, SEND_IMAGE, SEND_TEXT, STATUS, as_sent
from tests.test_openapi_fuzz import MEDIA, Api, Receiver, _pair, _register

pytestmark = pytest.mark.live_server


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    receiver = Receiver()
    data_dir = tmp_path_factory.mktemp("aulm")
    environment = {
        "API_RATE_LIMIT": "1000000 per 15 minutes",
        "ALLOW_PRIVATE_URLS": "true",  # the fuzzer's image URLs go to the loopback receiver
        "SEND_WAIT_SECONDS": "3",
        "SIMULATOR_RECEIPT_SECONDS": "0.2",
        "PACE_PER_MINUTE": "1000000",
        "PACE_PER_DAY": "1000000",
        "GOVERNOR_MIN_SAMPLE": "1000000",
        "GOVERNOR_MAX_COLD_PER_DAY": "0",
        "LOG_LEVEL": "WARNING",
    }
    try:
        with embedded_server(data_dir, **environment) as base_url:
            yield base_url, data_dir, receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def context(live) -> dict:
    """An Enterprise account (no daily cap for the fuzzer) with a paired session, a live key and a test key."""
    base_url, data_dir, receiver = live
    anonymous = Api(base_url)
    _register(anonymous, "first-admin@example.com")  # the first account is the admin: not this one
    email = "aulm-user@example.com"
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
    session_id = api("POST", "/api/sessions", 201, json={"name": "aulm"})["sessionId"]
    _pair(api, session_id)
    return {
        "baseUrl": base_url,
        "session": session_id,
        "spareSession": session_id,
        "liveKey": api("POST", "/api/keys", 201, json={"name": "live"})["key"],
        "testKey": api("POST", "/api/keys", 201, json={"name": "test", "mode": "test"})["key"],
        "receiver": receiver.url,
        **{
            name: base64.b64encode(MEDIA[kind][1]).decode()
            for name, kind in (("png", "image"), ("mp4", "video"), ("ogg", "audio"), ("pdf", "document"))
        },
    }


def curl(words: list[str]) -> tuple[int, dict[str, str], dict]:
    """Run a curl command; its status, headers (lower-case names) and JSON body."""
    result = subprocess.run(
        [*words, "--silent", "--show-error", "--include", "--max-time", "30"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("example", "kind", "status"),
    [
        (QUICK_START, "testKey", 201),
        (SEND_TEXT, "liveKey", 201),
        (SEND_TEXT, "testKey", 201),
        (SEND_IMAGE, "liveKey", 201),
        (SEND_IMAGE, "testKey", 201),
        (STATUS, "liveKey", 200),
        (STATUS, "testKey", 200),
    ],
    ids=["quick-start", "text-live", "text-test", "image-live", "image-test", "status-live", "status-test"],
)
def test_the_documents_curl_examples_run_unchanged(context, example, kind, status):
    answered, headers, body = curl(as_sent(example, context["baseUrl"], context[kind], context["session"]))

    assert answered == status, body
    assert set(body) == {"data", "request_id"}
    assert headers["x-request-id"] == body["request_id"]
    if status == 200:
        assert body["data"] == {"session_id": context["session"], "status": "connected"}
        return
    sent = body["data"]
    assert set(sent) == {"message_id", "session_id", "to", "status", "simulated"}
    assert (sent["session_id"], sent["to"], sent["simulated"]) == (
        context["session"],
        "+14155551234",
        kind == "testKey",
    )
    assert sent["message_id"].startswith("sim_") == (kind == "testKey")
    assert sent["status"] in ("sent", "queued")


def test_an_unknown_key_is_aulms_401(context):
    words = as_sent(STATUS, context["baseUrl"], "alm_sk_live_" + "0" * 64, context["session"])
    answered, headers, body = curl(words)
    assert (answered, body["error"]["code"]) == (401, "invalid_api_key")
    assert headers["x-request-id"]


@pytest.mark.fuzz
def test_schemathesis_finds_nothing_in_aulms_document(context, tmp_path):
    config, report = tmp_path / "schemathesis.toml", tmp_path / "report.json"
    config.write_text(
        f"""
base-url = "{context["baseUrl"]}"
hooks = "tests.aulm_fuzz_hooks"
workers = 2
request-timeout = 20

[auth.openapi.bearerAuth]
bearer = "{context["liveKey"]}"

[parameters]
"path.id" = "{context["session"]}"
"""
    )
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run"]
    command += [f"{context['baseUrl']}/aulm/openapi.json", "--phases", "examples,coverage,fuzzing"]
    command += ["--max-examples", "50", "--seed", os.environ.get("WAGATE_FUZZ_SEED", "20261123")]
    command += ["--report", "json", "--report-json-path", str(report)]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "WAGATE_FUZZ_CONTEXT": json.dumps(context), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-30000:]}\n{result.stderr[-3000:]}"
    outcome = json.loads(report.read_text())
    assert outcome["complete"] and outcome["failures"] == [] and outcome["errors"] == []
    assert outcome["operations"]["total"] == outcome["operations"]["tested"] == 3
    assert outcome["test_cases"]["generated"] > 100
