"""The web role's memory under large inline media, as deployed.

A real gunicorn web process (the README's production command) with PostgreSQL, redis-server
and an engine host on the simulator (tests/test_integration.py's Stack; no `flask worker`,
which nothing here needs). Four clients each send a 100 MB document inline, as a base64 data
URL in the JSON body (133 MB each), at the same time: the web process's peak resident memory
(VmHWM of the gunicorn worker, read from /proc) stays under 600 MB, and the engine host sends
exactly the bytes each client encoded. A body sent chunked past the limit is answered 413 in
the documented shape by the real server too.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.test_integration import (
    STARTUP_SECONDS,
    Stack,
    User,
    connected_user,
    pair_session,
    stack_started,
    wait_until,
)

pytestmark = pytest.mark.integration

MB = 1024 * 1024
MEDIA_BYTES = 100 * MB  # a document's limit
SENDS = 4
RSS_LIMIT_MB = 600
TO = "919876543210"
SEND_SECONDS = 180


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with stack_started("media-memory", worker=False) as started:
        yield started


@pytest.fixture(scope="module")
def sender(stack: Stack) -> Iterator[tuple[User, str]]:
    with connected_user(stack, "media") as user, stack.diagnostics():
        paired = pair_session(stack, user, "media", "919811112222")
        wait_until(
            lambda: user.request("GET", f"/api/sessions/{paired.session_id}/status").json()["status"] == "connected",
            STARTUP_SECONDS,
            "the session to connect",
        )
        yield user, paired.session_id


class InlineDocument:
    """A send's JSON body with a document inline as a data URL, made while it is sent (the
    client never holds it whole either); `sha256` is the document's once it has been sent."""

    BLOCK = 3 * MB  # a multiple of 3: the blocks' base64 joins into the whole's

    def __init__(self, seed: int, size: int = MEDIA_BYTES) -> None:
        self.seed, self.size = seed, size
        self.head = json.dumps({"to": TO, "document": {"filename": f"report-{seed}.pdf"}})[:-2].encode()
        self.head += b', "data": "data:application/pdf;base64,'
        self.tail = b'"}}'
        self.sha256 = ""

    def __len__(self) -> int:
        return len(self.head) + 4 * -(-self.size // 3) + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        digest, numbers = hashlib.sha256(), random.Random(self.seed)
        yield self.head
        left = self.size
        while left:
            block = numbers.randbytes(min(self.BLOCK, left))
            if left == self.size:
                block = b"%PDF-1.7\n" + block[9:]
            digest.update(block)
            left -= len(block)
            yield base64.b64encode(block)
        yield self.tail
        self.sha256 = digest.hexdigest()


def _post(base_url: str, path: str, user: User, body, headers: dict[str, str]) -> tuple[int, dict]:
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=SEND_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=user.headers | headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def _web_worker(stack: Stack) -> int:
    """The gunicorn worker process (the master only watches it)."""
    master = stack.processes["web"].popen.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) // 1024 for name in ("VmRSS", "VmHWM")}


def _outbox(stack: Stack, session_id: str) -> list[dict]:
    path = stack.root / "data" / "engines" / "simulator" / "outbox" / f"{session_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_four_concurrent_100_mb_inline_sends_keep_the_web_process_under_600_mb(stack, sender):
    user, session_id = sender
    worker = _web_worker(stack)
    before = _status(worker)
    documents = [InlineDocument(seed) for seed in range(SENDS)]
    url = f"/api/sessions/{session_id}/send"
    with stack.diagnostics(), ThreadPoolExecutor(SENDS) as pool:

        def send(document: InlineDocument) -> tuple[int, dict]:
            headers = {"Content-Type": "application/json", "Content-Length": str(len(document))}
            return _post(stack.base_url, url, user, document, headers)

        answers = list(pool.map(send, documents))
        after = _status(worker)
        for status, answer in answers:
            assert status in (200, 202) and answer["success"], answer
        assert after["VmHWM"] < RSS_LIMIT_MB, f"peak {after['VmHWM']} MB (before the sends: {before['VmRSS']} MB)"

        sent = {document.sha256 for document in documents}

        def all_sent() -> bool:
            carried = [record["media"] for record in _outbox(stack, session_id) if "media" in record]
            return {media["sha256"] for media in carried if media["size"] == MEDIA_BYTES} == sent

        wait_until(all_sent, SEND_SECONDS, "the engine host to send the four documents as the clients encoded them")
    uploads = stack.root / "data" / "media" / "uploads"
    assert not any(uploads.iterdir()), "temporary files left behind"


def test_a_chunked_body_over_the_limit_is_413_from_the_real_server(stack, sender):
    user, _ = sender

    def chunked() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(17):
            yield b"x" * 64 * 1024
        yield b'"}'

    with stack.diagnostics():
        status, answer = _post(stack.base_url, "/api/sessions", user, chunked(), {"Content-Type": "application/json"})
    assert status == 413, answer
    assert (answer["code"], answer["maxBytes"]) == ("PAYLOAD_TOO_LARGE", MB)
