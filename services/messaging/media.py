"""Media a user sends: fetched or decoded, size-capped, and its format checked by its bytes.

Media comes as a base64 data URL (`data:image/png;base64,...`) or an http(s) URL. URLs
are fetched by the server itself, never by the engine: every hop (redirects included)
goes through the same address check as webhooks (services/platform/urls.py), the whole fetch has
a deadline, and the body is counted while it streams, so a huge or endless answer is cut
off at the kind's limit. The format is then read from the content's first bytes, not
from a file name or a Content-Type header: an executable renamed .jpg is refused.

A data URL of a large body arrives already decoded into a file (services/messaging/inline.py)
and is checked here from what was kept of it, with the answers the string itself gets.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass

import httpx
from flask import current_app

from engines.outgoing import MediaFile
from services.errors import ApiError, ValidationError
from services.messaging.inline import InlineMedia, inline_media_find, media_file_head
from services.platform.urls import url_target

MB = 1024 * 1024
# The largest file each kind may be (wamux-api.txt's limits; WhatsApp's own).
LIMITS = {
    "image": 16 * MB,
    "video": 64 * MB,
    "audio": 16 * MB,
    "ptt": 16 * MB,
    "document": 100 * MB,
    "sticker": 1 * MB,
}
# Which formats each kind accepts.
ALLOWED = {
    "image": {"image/jpeg", "image/png", "image/webp", "image/gif"},
    "video": {"video/mp4", "video/3gpp", "video/quicktime", "video/webm"},
    "audio": {"audio/ogg", "audio/mpeg", "audio/aac", "audio/mp4", "audio/amr"},
    "ptt": {"audio/ogg"},
    "sticker": {"image/webp", "image/png"},
    "document": {
        "application/pdf",
        "application/zip",
        "application/msword",
        "text/plain",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "audio/ogg",
    },
}
EXECUTABLE = "application/x-executable"
MAX_REDIRECTS = 3
DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[\w.-]+)*;base64,(?P<data>.*)$", re.S)
# Names of documents (and their extension) as WhatsApp shows them.
FILENAME_MAX = 255
# C0 and C1 control characters (CR, LF, NEL...) and the Unicode line and paragraph separators.
UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Media:
    kind: str
    mimetype: str
    data: bytes | MediaFile  # a file for inline media of a large body, decoded to disk as it came
    filename: str | None = None

    @property
    def size(self) -> int:
        return self.data.size if isinstance(self.data, MediaFile) else len(self.data)


def media_sniff(data: bytes) -> str | None:
    """The format of `data` from its first bytes; None when it is none we know."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g"):
            return "video/3gpp"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        # An MPEG frame sync; AAC ADTS frames sync too, with layer bits 00.
        return "audio/aac" if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 else "audio/mpeg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"  # also .docx, .xlsx, .pptx
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/msword"  # also .xls, .ppt
    if head.startswith((b"\x7fELF", b"MZ", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"#!")):
        return EXECUTABLE
    if _is_text(data[:4096]):
        return "text/plain"
    return None


def _is_text(sample: bytes) -> bool:
    if not sample or b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:  # a sample may end inside a character
        return exc.start >= len(sample) - 3
    return True


def media_load(kind: str, source: object, *, field: str, filename: object = None) -> Media:
    """The media named by `source` (data URL or http(s) URL), checked for `kind`; 4xx if it may not go."""
    if not isinstance(source, str) or not source.strip():
        raise ValidationError(
            f"'{field}' is required: an http(s) URL or a base64 data URL",
            code="MEDIA_REQUIRED",
            details={"field": field},
        )
    limit = LIMITS[kind]
    inline = inline_media_find(source)
    source = source.strip()
    if inline is not None:
        data = _inline(inline, limit, field)
    else:
        data = _data_url(source, limit, field) if source.startswith("data:") else _fetch(source, limit, field)
    mimetype = media_sniff(media_file_head(data) if isinstance(data, MediaFile) else data)
    if mimetype not in ALLOWED[kind]:
        allowed = ", ".join(sorted(ALLOWED[kind]))
        found = "an executable" if mimetype == EXECUTABLE else (mimetype or "a format we do not recognise")
        raise ApiError(
            f"'{field}' is {found}; a {kind} must be one of: {allowed}",
            error="Unsupported media type",
            code="UNSUPPORTED_MEDIA_TYPE",
            status=415,
            details={"field": field, "detected": mimetype},
        )
    return Media(kind, mimetype, data, _filename(filename) if filename is not None else None)


def _too_large(field: str, kind: str, limit: int) -> ApiError:
    return ApiError(
        f"'{field}' is larger than {limit // MB} MB, the most a {kind} may be",
        error="Media too large",
        code="MEDIA_TOO_LARGE",
        status=413,
        details={"field": field, "maxBytes": limit},
    )


def _data_url(source: str, limit: int, field: str) -> bytes:
    match = DATA_URL.match(source)
    if match is None:
        raise _not_data_url(field)
    encoded = match["data"]
    if len(encoded) * 3 // 4 > limit + 3:
        raise _too_large(field, _kind_of(limit), limit)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_base64(field) from None
    if not data:
        raise _empty(field)
    if len(data) > limit:
        raise _too_large(field, _kind_of(limit), limit)
    return data


def _inline(inline: InlineMedia, limit: int, field: str) -> MediaFile:
    """A data URL decoded to a file as the body came in (services/messaging/inline.py), checked
    as `_data_url` checks one in memory, with the same answers in the same order."""
    if DATA_URL.match(inline.header) is None:
        raise _not_data_url(field)
    if inline.length * 3 // 4 > limit + 3:
        raise _too_large(field, _kind_of(limit), limit)
    if not inline.valid:
        raise _invalid_base64(field)
    if not inline.size:
        raise _empty(field)
    if inline.size > limit:
        raise _too_large(field, _kind_of(limit), limit)
    return inline.media_file()


def _not_data_url(field: str) -> ValidationError:
    return ValidationError(
        f"'{field}' is not a base64 data URL (data:<type>;base64,<data>)",
        code="INVALID_MEDIA",
        details={"field": field},
    )


def _invalid_base64(field: str) -> ValidationError:
    return ValidationError(f"'{field}' has invalid base64 data", code="INVALID_MEDIA", details={"field": field})


def _empty(field: str) -> ValidationError:
    return ValidationError(f"'{field}' is empty", code="INVALID_MEDIA", details={"field": field})


def _kind_of(limit: int) -> str:
    return next(kind for kind, value in LIMITS.items() if value == limit)


def _fetch(url: str, limit: int, field: str) -> bytes:
    """GET the URL (following up to MAX_REDIRECTS redirects, each checked), at most `limit` bytes."""
    timeout = current_app.config["MEDIA_FETCH_TIMEOUT_SECONDS"]
    deadline = time.monotonic() + timeout
    with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = url_target(url, field_name=field)
            try:
                with client.stream("GET", target.url, headers=target.headers, extensions=target.extensions) as reply:
                    if reply.is_redirect:
                        location = reply.headers.get("Location", "")
                        url = str(httpx.URL(url).join(location))
                        continue
                    if reply.status_code != 200:
                        raise _unreachable(field, f"it answered HTTP {reply.status_code}")
                    declared = reply.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _too_large(field, _kind_of(limit), limit)
                    body = bytearray()
                    for chunk in reply.iter_bytes():  # as it arrives, so the deadline is checked while it drips
                        body += chunk
                        if len(body) > limit:
                            raise _too_large(field, _kind_of(limit), limit)
                        if time.monotonic() > deadline:
                            raise _unreachable(field, f"it took longer than {timeout:g} s")
                    if not body:
                        raise _unreachable(field, "it answered with an empty body")
                    return bytes(body)
            except httpx.TimeoutException:
                raise _unreachable(field, f"it took longer than {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise _unreachable(field, f"the request failed ({type(exc).__name__})") from None
    raise _unreachable(field, f"it redirected more than {MAX_REDIRECTS} times")


def _unreachable(field: str, why: str) -> ValidationError:
    return ValidationError(
        f"The media at '{field}' could not be fetched: {why}", code="MEDIA_FETCH_FAILED", details={"field": field}
    )


def _filename(value: object) -> str:
    name = file_name_safe(value) if isinstance(value, str) else ""
    if not name:
        raise ValidationError("'filename' must be a file name like invoice.pdf", code="INVALID_FIELD")
    return name


def file_name_safe(name: str) -> str:
    """A file name fit for a download header and a disk, whoever chose it (a contact's document
    may be called anything): control characters such as CR and LF become a space, path
    separators an underscore; at most FILENAME_MAX characters, "" when nothing is left."""
    name = UNSAFE_IN_NAMES.sub(" ", name).replace("/", "_").replace("\\", "_")
    return name.strip()[:FILENAME_MAX].strip()
