"""Inline media in a large body, decoded to disk as it streams in (blueprints/contract/spool.py,
services/messaging/inline.py): the same answers as a body read whole, byte-exact files, files
gone when the request ends, and the cap on large uploads read at once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import random
import re
import tempfile
import threading
from collections.abc import Iterator

import pytest

from blueprints.contract.spool import InvalidJson, JsonSpooler
from tests.fixtures import PNG, WEBP, data_url
from tests.helpers import wait_for

KB = 1024
MB = 1024 * KB
# What the media service takes as a data URL (services/messaging/media.py).
SERVICE_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[\w.-]+)*;base64,(?P<data>.*)$", re.S)


# -- the scanner, alone ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def files() -> Iterator[list]:
    """The files the scanner tests' spoolers open, closed after each test (as a request's are)."""
    FILES.clear()
    yield FILES
    for file in FILES:
        file.close()


FILES: list = []


def _open_file():
    FILES.append(tempfile.TemporaryFile())
    return FILES[-1]


def _spool(body: bytes, *, spool_after: int = 16, piece: int | None = 7) -> tuple[object, dict]:
    """Feed `body` to a spooler in pieces; the parsed copy and the spooled media by stand-in."""
    spooler = JsonSpooler(_open_file, spool_after=spool_after)
    step = piece or len(body) or 1
    for start in range(0, len(body), step):
        spooler.feed(body[start : start + step])
    return json.loads(spooler.finish()), spooler.media


def _decoded(media) -> bytes:
    media.file.seek(0)
    return media.file.read()


def _only(media: dict):
    [(stand_in, found)] = media.items()
    return stand_in, found


@pytest.mark.parametrize("piece", [1, 2, 5, 64, None])
def test_a_data_url_is_decoded_to_a_file_and_the_rest_kept(piece):
    data = bytes(range(256)) * 40
    body = json.dumps({"to": "919876543210", "image": {"data": data_url(data), "caption": "é ✓"}}).encode()
    parsed, media = _spool(body, piece=piece)
    stand_in, found = _only(media)
    assert parsed["to"] == "919876543210" and parsed["image"]["caption"] == "é ✓"
    assert parsed["image"]["data"] == stand_in and stand_in.startswith("data:image/png;base64,")
    assert (found.header, found.valid, found.size) == ("data:image/png;base64,", True, len(data))
    assert found.length == len(base64.b64encode(data)) and _decoded(found) == data
    assert found.sha256 == hashlib.sha256(data).hexdigest()


def test_short_strings_and_other_long_strings_stay_as_they_are():
    body = {"message": "x" * 100, "note": "not a data URL " * 20, "raw": "data:image/png," + "A" * 100, "n": [1, 2.5]}
    parsed, media = _spool(json.dumps(body).encode())
    assert parsed == body and media == {}


def test_a_data_url_with_parameters_and_escaped_slashes_as_some_encoders_write_them():
    data = b"\xff\xfe\xfd" * 500  # base64 full of "/"
    encoded = base64.b64encode(data).decode()
    body = '{"image": "data:image\\/png;name=a.png;base64,' + encoded.replace("/", "\\/") + '"}'
    parsed, media = _spool(body.encode())
    _, found = _only(media)
    assert found.header == "data:image/png;name=a.png;base64," and SERVICE_DATA_URL.match(found.header)
    assert found.valid and _decoded(found) == data


@pytest.mark.parametrize(
    ("middle", "valid"),
    [
        ("@@@", False),  # not base64
        ("\\n", False),  # a line break, as MIME wraps base64: not what b64decode(validate=True) takes
        (" ", False),  # whitespace inside (at the end it is stripped)
        ("====", False),  # padding in the middle
        ("\\u0041\\u0041\\u0041\\u0041", True),  # escapes of base64 characters are base64 characters
        ("é", False),
    ],
)
def test_what_is_wrong_in_the_middle_of_the_data_is_found_and_everything_is_counted(middle, valid):
    encoded = "QUJD" * 500
    text = "data:image/png;base64," + encoded + middle + encoded
    parsed, media = _spool(b'{"image": "' + text.encode() + b'"}')
    _, found = _only(media)
    value = json.loads('"' + text + '"')
    expected_length = len(SERVICE_DATA_URL.match(value.strip())["data"])
    assert (found.valid, found.length) == (valid, expected_length)


def test_whitespace_at_the_end_is_left_out_as_the_service_strips_it():
    encoded = base64.b64encode(PNG * 50).decode()
    _, media = _spool(json.dumps({"image": f"data:image/png;base64,{encoded} \n\t"}).encode())
    _, found = _only(media)
    assert found.valid and found.length == len(encoded) and _decoded(found) == PNG * 50


@pytest.mark.parametrize(
    "body",
    [
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100,  # cut short inside the data
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100 + b"\\",  # ... in an escape
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100 + b'\\x"}',  # an escape JSON has not
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100 + b'\\u00G1"}',
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100 + b'\x01"}',  # a control character
        b'{"image": "data:image/png;base64,' + b"QUJD" * 100 + b'\xff"}',  # not UTF-8
        b'{"message": "' + b"x" * 100 + b"\x01" + b'"}',
    ],
)
def test_a_body_that_is_not_json_is_refused(body):
    with pytest.raises(ValueError):  # InvalidJson from the scanner, or json.loads's own on the copy
        _spool(body)
    with pytest.raises(ValueError):
        json.loads(body)


def test_a_body_cut_short_inside_the_data_is_invalid_json():
    spooler = JsonSpooler(_open_file, spool_after=16)
    spooler.feed(b'{"to": "1", "image": "data:image/png;base64,' + b"QUJD" * 1000)
    with pytest.raises(InvalidJson):
        spooler.finish()


def test_nested_bodies_keep_their_shape_and_each_data_url_gets_its_own_file():
    first, second = PNG * 20, WEBP * 40
    body = {"a": [1, {"b": {"data": data_url(first)}}, [data_url(second, "image/webp")]], "c": {"d": None}}
    parsed, media = _spool(json.dumps(body).encode(), piece=3)
    assert len(media) == 2 and parsed["c"] == {"d": None} and parsed["a"][0] == 1
    assert _decoded(media[parsed["a"][1]["b"]["data"]]) == first
    assert _decoded(media[parsed["a"][2][0]]) == second


@pytest.mark.parametrize(
    ("escape", "unpaired"),
    [("\\ud800", True), ("\\udc00", True), ("\\ud83d\\ude00", False), ("😀", False)],
)
def test_a_surrogate_escape_alone_is_told_apart_from_a_pair(escape, unpaired):
    text = "data:image/png;base64," + "QUJD" * 100 + escape
    for piece in (1, 5, 11, None):  # an escape pair cut between pieces
        _, media = _spool(b'{"image": "' + text.encode() + b'"}', piece=piece)
        _, found = _only(media)
        assert (found.unpaired_surrogate, found.valid) == (unpaired, False), piece


def test_a_utf16_body_is_read_as_json_loads_reads_it():
    data = PNG * 30
    body = json.dumps({"image": data_url(data), "caption": "ü"}).encode("utf-16")
    parsed, media = _spool(body)
    assert parsed["caption"] == "ü" and _decoded(media[parsed["image"]]) == data


# What the service makes of a data URL's string (services/messaging/media.py), for comparing.
def _as_the_service_reads(value: str) -> tuple:
    match = SERVICE_DATA_URL.match(value.strip())
    if match is None:
        return (False,)
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        return (True, len(match["data"]), False, None)
    return (True, len(match["data"]), True, hashlib.sha256(data).hexdigest())


PIECES = ["QUJD", "QQ", "Q", "=", "==", " ", "\\n", "\\/", "/", "+", "\\u0041", "\\ud83d\\ude00", "é", "\\\\", '\\"']


def test_any_data_url_reads_as_the_service_reads_the_string():
    """Random data URLs, fed in random pieces: the file and its facts match what the media
    service finds in the same string read whole."""
    numbers = random.Random(20260517)
    for _ in range(400):
        head = numbers.choice(["data:image/png;base64,", "data:;base64,", "data:a/b;x=1;base64,", "data:a b;base64,"])
        text = head + "".join(numbers.choice(PIECES) for _ in range(numbers.randint(0, 40))) + "QUJD" * 20
        body = b'{"x": [{"image": "' + text.encode() + b'"}]}'
        parsed, media = _spool(body, spool_after=numbers.choice([8, 24, 64]), piece=numbers.randint(1, 16))
        value = json.loads(body)["x"][0]["image"]
        stand_in, found = _only(media)
        assert parsed["x"][0]["image"] == stand_in
        service = _as_the_service_reads(value)
        assert (SERVICE_DATA_URL.match(found.header) is not None) == service[0], text
        if service[0]:
            facts = (True, found.length, found.valid, found.sha256 if found.valid else None)
            assert facts == service, text
            if found.valid:
                assert _decoded(found) == base64.b64decode(SERVICE_DATA_URL.match(value.strip())["data"])


# -- through the API ------------------------------------------------------------------------------


@pytest.fixture(params=["streamed", "whole"])
def config_overrides(request):
    """Each API test runs twice: large bodies streamed (the default), and every body read whole."""
    limit = 1 * KB if request.param == "streamed" else 10**9
    return {"LARGE_UPLOAD_BYTES": limit, "SEND_MAX_REQUEST_BYTES": 4 * MB}


def _send(client, account, session_id: str, payload: dict | bytes, path: str = "send"):
    body = payload if isinstance(payload, bytes) else json.dumps({"to": "919876543210", **payload}).encode()
    return client.post(
        f"/api/sessions/{session_id}/{path}", data=body, content_type="application/json", headers=account.headers
    )


def _open_uploads() -> list[str]:
    """The files under a media/uploads folder this process has open."""
    found = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if "/media/uploads" in target:
            found.append(target)
    return found


IMAGE = PNG + bytes(300 * KB)  # a PNG by its first bytes, long enough to be spooled


def test_a_large_inline_image_is_sent_byte_for_byte_and_its_file_kept(client, runtime, account, shop):
    response = _send(client, account, shop, {"image": {"data": data_url(IMAGE), "caption": "Receipt"}})
    assert response.status_code == 200, response.get_json()
    message_id = response.get_json()["messageId"]
    [sent] = runtime.engine_host.engine.outbox(shop)
    assert (sent["media"]["sha256"], sent["media"]["size"]) == (hashlib.sha256(IMAGE).hexdigest(), len(IMAGE))
    kept = client.get(f"/api/messages/{message_id}/media", headers=account.headers)
    served = kept.get_data()
    kept.close()  # the file it was served from
    assert kept.status_code == 200 and served == IMAGE
    assert _open_uploads() == []


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"image": "data:image/png;base64," + "QUJD" * 30000 + "@" + "QUJD" * 10}, 400, "INVALID_MEDIA"),
        ({"image": "data:image/png;base64," + "QUJD" * 30000 + "\n"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"image": "data:image/png;foo;base64," + "QUJD" * 30000}, 400, "INVALID_MEDIA"),
        ({"image": "data:image/png;base64," + " " * 100 * KB}, 400, "INVALID_MEDIA"),
        ({"sticker": data_url(WEBP + bytes(MB), "image/webp")}, 413, "MEDIA_TOO_LARGE"),
        ({"sticker": "data:image/webp;base64," + "@" * 2 * MB}, 413, "MEDIA_TOO_LARGE"),  # the size is told first
        ({"image": data_url(b"\x7fELF\x02\x01\x01" + bytes(200 * KB), "image/png")}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"image": {"data": data_url(IMAGE)}, "caption": "x" * 1025}, 400, "MESSAGE_TOO_LONG"),
        ({"message": data_url(IMAGE)}, 400, "MESSAGE_TOO_LONG"),
    ],
)
def test_bad_inline_media_gets_the_same_answer_streamed_or_whole(client, runtime, account, shop, payload, status, code):
    response = _send(client, account, shop, payload)
    assert (response.status_code, response.get_json()["code"]) == (status, code), response.get_json()
    assert runtime.engine_host.engine.outbox(shop) == []
    assert _open_uploads() == []


def test_a_lone_surrogate_in_the_data_is_invalid_unicode_streamed_or_whole(client, runtime, account, shop):
    body = b'{"to": "919876543210", "image": "data:image/png;base64,' + b"QUJD" * 30000 + b'\\ud800"}'
    response = _send(client, account, shop, body)
    answer = response.get_json()
    assert (response.status_code, answer["code"], answer["field"]) == (400, "INVALID_UNICODE", "image"), answer


@pytest.mark.parametrize("cut", [100, 70 * KB])
def test_a_body_cut_short_is_invalid_json_streamed_or_whole(client, runtime, account, shop, cut):
    body = json.dumps({"to": "919876543210", "image": data_url(IMAGE)}).encode()[:cut]
    response = _send(client, account, shop, body)
    assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_JSON")
    assert _open_uploads() == []


def test_other_dialects_take_large_inline_media_too(client, runtime, account, shop):
    body = {"to": "919876543210", "mediaType": "image", "mediaUrl": data_url(IMAGE)}
    response = client.post("/api/v1/messages/media", json=body | {"sessionId": shop}, headers=account.headers)
    assert response.status_code == 202, response.get_json()
    body = {"to": "919876543210", "image": {"url": data_url(IMAGE)}}
    response = client.post(f"/api/v1/send-message?sessionId={shop}", json=body, headers=account.headers)
    assert response.status_code in (200, 202), response.get_json()

    def both_sent() -> bool:
        return len(runtime.engine_host.engine.outbox(shop)) == 2

    wait_for(both_sent, message="both sends to reach the network")
    assert {entry["media"]["sha256"] for entry in runtime.engine_host.engine.outbox(shop)} == {
        hashlib.sha256(IMAGE).hexdigest()
    }


# -- the cap on large uploads read at once ------------------------------------------------------


class _HeldBody(io.BytesIO):
    """A body whose bytes past `hold_at` arrive once `go` is set (a slow client)."""

    def __init__(self, body: bytes, hold_at: int) -> None:
        super().__init__(body)
        self.hold_at, self.go, self.started = hold_at, threading.Event(), threading.Event()

    def readinto(self, buffer) -> int:
        if self.tell() >= self.hold_at:
            self.started.set()
            self.go.wait(10)
            return super().readinto(buffer)
        return super().readinto(memoryview(buffer)[: self.hold_at - self.tell()])


CAPPED = {"LARGE_UPLOAD_BYTES": KB, "SEND_MAX_REQUEST_BYTES": 4 * MB, "LARGE_UPLOADS_MAX": 1}


@pytest.mark.parametrize("config_overrides", [CAPPED | {"LARGE_UPLOAD_WAIT_SECONDS": 0.2}])
def test_uploads_past_the_cap_wait_then_get_503_with_retry_after(app, client, runtime, account, shop):
    body = json.dumps({"to": "919876543210", "image": data_url(IMAGE)}).encode()
    held = _HeldBody(body, hold_at=2 * KB)
    answers = {}

    def slow_client() -> None:
        with app.test_client() as other:
            answers["slow"] = other.post(
                f"/api/sessions/{shop}/send",
                input_stream=held,
                content_type="application/json",
                headers=account.headers,
            )

    thread = threading.Thread(target=slow_client)
    thread.start()
    try:
        assert held.started.wait(10)
        busy = _send(client, account, shop, body)
        answer = busy.get_json()
        assert (busy.status_code, answer["code"], busy.headers["Retry-After"]) == (503, "TOO_MANY_UPLOADS", "1")
        assert "1 large uploads" in answer["message"]
        wamux = client.post(
            "/api/v1/messages/media", data=body, content_type="application/json", headers=account.headers
        )
        assert wamux.status_code == 503 and wamux.headers["Retry-After"] == "1"
        assert wamux.get_json()["statusCode"] == 503  # in Wamux's own error shape
        small = _send(client, account, shop, {"message": "hi"})
        assert small.status_code in (200, 202), small.get_json()  # a small body is not held back
        over = client.post(
            "/api/sessions", data=b"x" * 2 * MB, content_type="application/json", headers=account.headers
        )
        assert over.status_code == 413  # a body over its route's limit is told so, without waiting
    finally:
        held.go.set()
        thread.join(10)
    assert answers["slow"].status_code in (200, 202), answers["slow"].get_json()  # it had its turn
    after = _send(client, account, shop, body)
    assert after.status_code in (200, 202), after.get_json()  # and gave the slot back
