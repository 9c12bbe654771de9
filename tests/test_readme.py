"""The README's walkthrough, followed literally: its curl commands, run by bash against a
fresh `python app.py` on a port of its own, as `PORT=… make run` starts it."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.helpers import wait_for
from tests.live import ROOT, embedded_server

pytestmark = pytest.mark.live_server

README = (ROOT / "README.md").read_text()


def _walkthrough() -> str:
    """The first shell block after "Try it with curl"."""
    section = README.split("Try it with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture
def tools():
    missing = [tool for tool in ("curl", "jq") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("WAGATE_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"{', '.join(missing)} not installed")
        pytest.skip(f"{', '.join(missing)} not installed")


def test_the_curl_walkthrough_ends_with_a_message_sent(tmp_path: Path, tools):
    # PUBLIC_URL unset, as in a fresh clone: the QR's link must follow the port.
    with embedded_server(tmp_path, PUBLIC_URL="") as base_url:
        script = _walkthrough().replace("http://127.0.0.1:5000", base_url)
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        # What the reader sees: the scan's answer, then the send's.
        paired, sent = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert paired["status"] == "connected", paired
        assert sent["success"] is True and sent["message"] in {
            "Message sent successfully",
            "Message queued; it will be sent shortly",
        }, sent

        token = requests.post(
            f"{base_url}/api/login", json={"email": "me@example.com", "password": "securepassword123"}, timeout=10
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}

        def gone_out() -> dict | None:
            message = requests.get(f"{base_url}/api/messages/{sent['messageId']}", headers=headers, timeout=10).json()
            return message if message["status"] in {"sent", "delivered", "read"} else None

        message = wait_for(gone_out, timeout=20, message="the message to go out")
        assert message["to"] == "919876543210" and message["message"] == "Hello from wagate", message
        outbox = tmp_path / "engines" / "simulator" / "outbox" / f"{paired['sessionId']}.jsonl"
        assert "Hello from wagate" in outbox.read_text()
