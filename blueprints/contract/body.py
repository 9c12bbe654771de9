"""Reading a request's body: within its limit, and a large one without holding it whole.

A body larger than LARGE_UPLOAD_BYTES, or of unknown length, is read in pieces through a
`JsonSpooler` (blueprints/contract/spool.py): its inline media is decoded to disk as it
arrives, and only the rest of the JSON is kept for the parser. At most LARGE_UPLOADS_MAX
such bodies are read at once in a process; a further one waits for its turn up to
LARGE_UPLOAD_WAIT_SECONDS, then is answered 503 with Retry-After (in the route's dialect).

A body sent chunked (Transfer-Encoding: chunked, no Content-Length) is held to the route's
limit (`request.max_content_length`) as it is read. werkzeug's own guard stops reading at the
limit and hands back what it read, so a body one byte over reached the JSON parser cut short
(400 INVALID_JSON where the README promises 413); `Request.stream` here looks one byte
further and answers 413 in the documented shape when there is more.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

import flask
from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

from blueprints.contract.spool import JsonSpooler
from services.errors import ServiceUnavailable
from services.messaging.inline import (
    InlineMedia,
    inline_file_open,
    inline_files_close,
    inline_media_keep,
    uploads_folder,
)

PIECE = 64 * 1024


class BodyLimit(LimitedStream):
    """A body of unknown length held to `limit` bytes: 413 on the first byte past it."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.is_exhausted:
            self._refuse_more()
            return 0
        return super().readinto(buffer)

    def readall(self) -> bytes:
        data = super().readall()  # stops at the limit
        self._refuse_more()
        return data

    def _refuse_more(self) -> None:
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()


class Request(flask.Request):
    """Flask's request, whose body stream answers 413 past the limit also when sent chunked."""

    @cached_property
    def stream(self) -> IO[bytes]:
        if self.shallow:
            raise RuntimeError("This request was created with 'shallow=True': its body cannot be read")
        limit = self.max_content_length
        if self.content_length is None and "wsgi.input_terminated" in self.environ and limit is not None:
            return BodyLimit(self.environ["wsgi.input"], limit)
        return get_input_stream(self.environ, max_content_length=limit)


def register(app: Flask) -> None:
    """Read bodies as this module does, and close each request's inline media files when it ends."""
    app.request_class = Request
    app.teardown_request(inline_files_close)


def body_streams() -> bool:
    """Whether this request's body is read in pieces: larger than LARGE_UPLOAD_BYTES, or of
    unknown length (an app without the setting reads every body whole)."""
    threshold = current_app.config.get("LARGE_UPLOAD_BYTES")
    length = request.content_length
    return threshold is not None and (length is None or length > threshold)


def body_spooled() -> tuple[bytes, dict[str, InlineMedia]]:
    """The body's JSON with its long data URLs decoded to files, and those files by the strings
    standing in for them (`InlineMedia`); spool.InvalidJson if it is not JSON.

    It takes one of the process's large-upload slots once it is past LARGE_UPLOAD_BYTES (at
    once when it says so), given back when the body is read.
    """
    stream = request.stream  # first: a Content-Length over the route's limit is 413 before any wait
    spooler = JsonSpooler(lambda: inline_file_open(uploads_folder()))
    threshold = current_app.config["LARGE_UPLOAD_BYTES"]
    with ExitStack() as slot:
        large = request.content_length is not None  # and so over the threshold
        if large:
            slot.enter_context(_upload_slot())
        read = 0
        while piece := stream.read(PIECE):
            read += len(piece)
            if not large and read > threshold:
                slot.enter_context(_upload_slot())
                large = True
            spooler.feed(piece)
        copy = spooler.finish()
    for stand_in, media in spooler.media.items():
        inline_media_keep(stand_in, media)
    return copy, spooler.media


@contextmanager
def _upload_slot() -> Iterator[None]:
    """One of LARGE_UPLOADS_MAX large bodies read at once; 503 when none is free in time."""
    config = current_app.config
    slots = current_app.extensions.get("large uploads")
    if slots is None:  # made in the serving process (after a gevent worker has patched threading)
        new = threading.BoundedSemaphore(config["LARGE_UPLOADS_MAX"])
        slots = current_app.extensions.setdefault("large uploads", new)
    wait = config["LARGE_UPLOAD_WAIT_SECONDS"]
    if not slots.acquire(timeout=wait):
        retry = max(1, math.ceil(wait))
        raise ServiceUnavailable(
            f"The server is taking in {config['LARGE_UPLOADS_MAX']} large uploads already; try again in {retry} s",
            error="Too many uploads",
            code="TOO_MANY_UPLOADS",
            headers={"Retry-After": str(retry)},
        )
    try:
        yield
    finally:
        slots.release()
