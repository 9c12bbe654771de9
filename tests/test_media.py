"""Media checks: the format is read from the bytes, sizes are capped, URLs are fetched safely."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from services.errors import ApiError
from services.messaging.media import LIMITS, media_load, media_sniff
from tests.fixtures import JPEG, PNG, data_url
from tests.helpers import http_server

ELF = b"\x7fELF\x02\x01\x01" + bytes(100)
WINDOWS_EXE = b"MZ\x90\x00" + bytes(100)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x18ftyp3gp4\x00\x00", "video/3gpp"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video/webm"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00", "audio/mp4"),
        (b"OggS\x00\x02" + bytes(30), "audio/ogg"),
        (b"ID3\x04\x00" + bytes(30), "audio/mpeg"),
        (b"\xff\xf1\x50\x80" + bytes(30), "audio/aac"),
        (b"#!AMR\n" + bytes(30), "audio/amr"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"PK\x03\x04" + bytes(30), "application/zip"),
        ("Invoice 42: ₹1,200 due\n".encode(), "text/plain"),
        (ELF, "application/x-executable"),
        (WINDOWS_EXE, "application/x-executable"),
        (b"#!/bin/sh\nrm -rf /\n", "application/x-executable"),
        (bytes(range(256)), None),
    ],
)
def test_formats_are_read_from_the_first_bytes(data, expected):
    assert media_sniff(data) == expected


def test_an_image_as_a_data_url_is_accepted(app):
    with app.app_context():
        media = media_load("image", data_url(PNG), field="image")
    assert (media.kind, media.mimetype, media.data) == ("image", "image/png", PNG)


@pytest.mark.parametrize("executable", [ELF, WINDOWS_EXE])
def test_an_executable_named_as_an_image_is_refused(app, executable):
    with app.app_context(), pytest.raises(ApiError) as refused:
        media_load("image", data_url(executable, "image/jpeg"), field="image")
    assert (refused.value.status, refused.value.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert "an executable" in refused.value.message


def test_an_image_over_16_mb_is_refused_before_it_is_decoded(app):
    too_big = PNG + bytes(LIMITS["image"])
    with app.app_context(), pytest.raises(ApiError) as refused:
        media_load("image", data_url(too_big), field="image")
    assert (refused.value.status, refused.value.code) == (413, "MEDIA_TOO_LARGE")
    assert "16 MB" in refused.value.message


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("data:image/png;base64,@@@not base64@@@", "INVALID_MEDIA"),
        ("data:image/png,rawbytes", "INVALID_MEDIA"),
        ("", "MEDIA_REQUIRED"),
        ("ftp://example.com/a.png", "INVALID_URL"),
    ],
)
def test_bad_sources_get_clear_codes(app, source, code):
    with app.app_context(), pytest.raises(ApiError) as refused:
        media_load("image", source, field="image")
    assert refused.value.code == code


def test_a_voice_note_must_be_ogg(app):
    with app.app_context(), pytest.raises(ApiError) as refused:
        media_load("ptt", data_url(b"ID3\x04\x00" + bytes(30), "audio/mpeg"), field="audio")
    assert refused.value.code == "UNSUPPORTED_MEDIA_TYPE"
    with app.app_context():
        assert media_load("ptt", data_url(b"OggS\x00\x02" + bytes(30), "audio/ogg"), field="audio").mimetype == (
            "audio/ogg"
        )


class _Files(BaseHTTPRequestHandler):
    """Serves /image.png, /huge (endless bytes), /redirect (to `target`), /missing."""

    target = ""

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/image.png":
            body = PNG
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/huge":  # no Content-Length: only counting while streaming stops it
            self.send_response(200)
            self.end_headers()
            try:
                self.wfile.write(PNG)
                for _ in range(LIMITS["sticker"] // 65536 + 10):
                    self.wfile.write(bytes(65536))
            except OSError:
                pass
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.target)
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def files():
    with http_server(_Files) as url:
        yield url


class TestFetchingOnAPrivateNetwork:
    """With ALLOW_PRIVATE_URLS (a self-hosted network) the local file server may be used."""

    @pytest.fixture
    def config_overrides(self):
        return {"ALLOW_PRIVATE_URLS": True, "MEDIA_FETCH_TIMEOUT_SECONDS": 5}

    def test_a_url_is_fetched(self, app, files):
        with app.app_context():
            assert media_load("image", f"{files}/image.png", field="image").data == PNG

    def test_an_endless_answer_is_cut_off_at_the_limit(self, app, files):
        with app.app_context(), pytest.raises(ApiError) as refused:
            media_load("sticker", f"{files}/huge", field="sticker")
        assert refused.value.code == "MEDIA_TOO_LARGE"

    def test_a_missing_file_is_a_clear_fetch_failure(self, app, files):
        with app.app_context(), pytest.raises(ApiError) as refused:
            media_load("image", f"{files}/missing", field="image")
        assert refused.value.code == "MEDIA_FETCH_FAILED"
        assert "HTTP 404" in refused.value.message


SSRF_CORPUS = [
    "http://127.0.0.1/a.png",
    "http://[::1]/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/a.png",
    "http://172.16.3.4/a.png",
    "http://192.168.1.10/a.png",
    "http://localhost/a.png",  # a host name that resolves to loopback
    "http://[::ffff:127.0.0.1]/a.png",
]


@pytest.mark.parametrize("url", SSRF_CORPUS)
def test_private_loopback_and_link_local_urls_are_refused(app, url):
    with app.app_context(), pytest.raises(ApiError) as refused:
        media_load("image", url, field="image")
    assert refused.value.code == "URL_NOT_ALLOWED"


class TestRedirects:
    """Only 127.0.0.2 is let through (ALLOWED_PRIVATE_NETWORKS), standing in for a public host."""

    @pytest.fixture
    def config_overrides(self):
        return {"ALLOWED_PRIVATE_NETWORKS": ["127.0.0.2/32"], "MEDIA_FETCH_TIMEOUT_SECONDS": 5}

    @pytest.fixture
    def public(self, files):
        with http_server(_Files, host="127.0.0.2") as url:
            yield url, files

    def test_an_allowed_host_is_fetched(self, app, public):
        allowed, _ = public
        with app.app_context():
            assert media_load("image", f"{allowed}/image.png", field="image").data == PNG

    def test_a_redirect_to_loopback_is_refused(self, app, public):
        allowed, loopback = public
        _Files.target = f"{loopback}/image.png"
        with app.app_context(), pytest.raises(ApiError) as refused:
            media_load("image", f"{allowed}/redirect", field="image")
        assert refused.value.code == "URL_NOT_ALLOWED"
        assert "127.0.0.1" in refused.value.message

    def test_a_redirect_to_an_allowed_host_is_followed(self, app, public):
        allowed, _ = public
        _Files.target = f"{allowed}/image.png"
        with app.app_context():
            assert media_load("image", f"{allowed}/redirect", field="image").data == PNG
