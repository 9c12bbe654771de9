"""A message's stored file as a response, for the API and the dashboard alike."""

from pathlib import Path

from flask import Response, send_file

from services.messaging.history import StoredMedia


def media_response(stored: StoredMedia) -> Response:
    """The file, shown in place when it is a common image, video or audio format, else a download.

    A received file is whatever the contact sent: a browser must never sniff it into
    something else or run it as a page, and no shared cache may keep it.
    """
    response = send_file(
        stored.file, mimetype=stored.mimetype, download_name=stored.filename, as_attachment=not stored.inline, max_age=0
    )
    if not isinstance(stored.file, Path):  # a path's size is known to send_file
        response.content_length = stored.size
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
