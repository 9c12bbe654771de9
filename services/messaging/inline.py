"""Inline media (a base64 data URL in a request body) decoded into a file as the body arrives.

The web role never holds a large upload whole: the body reader (blueprints/contract/spool.py)
hands the characters of a long data URL to an `InlineDecoder` as they stream in, and they are
decoded into an unnamed temporary file under DATA_DIR/media/uploads. Kept beside the file is
what the media service needs to answer exactly as it does for the string itself
(services/messaging/media.py): how many characters the data had, whether base64 takes them
(`base64.b64decode(..., validate=True)`'s rules), the size and SHA-256 of the bytes.

The files are the request's: closed when it ends, whatever happens, and being unnamed they
are gone then (or when the process dies). A message that keeps its media gives the file a
name in place (a hard link, no copy) where the file system allows, else copies it (into
PostgreSQL, a part at a time, when media is kept there: engines/state.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app, g, has_app_context

from engines.outgoing import MediaFile

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NOT_ALPHABET = re.compile("[^A-Za-z0-9+/]")
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class InlineMedia:
    """A data URL of a request body, its data decoded into `file`."""

    header: str  # "data:image/png;base64," as sent
    file: BinaryIO
    length: int  # characters of data after the header, trailing whitespace left out (as len() counts)
    valid: bool  # whether base64.b64decode(data, validate=True) takes them
    size: int  # bytes decoded
    sha256: str
    unpaired_surrogate: bool  # a character no text can hold (an escape such as \ud800 alone)

    def media_file(self) -> MediaFile:
        return MediaFile(self.file, self.size, self.sha256)


class InlineDecoder:
    """The characters of a data URL's data, fed in pieces, decoded into `file` as they come.

    Valid data is what `b64decode(validate=True)` takes: base64 characters, then `=` padding
    as it allows, nothing else; whitespace at the end is left out, as the media service
    strips the string. Past the first character that breaks those rules nothing
    more is decoded, but every character is still counted (the size check comes first).
    """

    def __init__(self, header: str, file: BinaryIO) -> None:
        self.header, self.file = header, file
        self._sha256 = hashlib.sha256()
        self._tail = b""  # base64 characters not yet decoded (fewer than 4)
        self._quads = 0  # base64 characters decoded (whole quads)
        self._padding = 0
        self._spaces = 0  # whitespace held back: left out if nothing but whitespace follows
        self._length = 0
        self._size = 0
        self._broken = False
        self._surrogate = False

    def feed_base64(self, run: bytes) -> None:
        """Characters all of the base64 alphabet (the caller checked), the fast path."""
        if self._broken or self._padding or self._spaces:
            self.feed_text(run.decode("ascii"))
            return
        self._length += len(run)
        self._decode(run)

    def feed_text(self, text: str) -> None:
        """Any characters (JSON escapes already read)."""
        if not self._surrogate and SURROGATE.search(text):
            self._surrogate = True
        position = 0
        while position < len(text) and not self._broken:
            found = NOT_ALPHABET.search(text, position)
            end = found.start() if found else len(text)
            if end > position:
                if self._padding or self._spaces:  # data after padding or after whitespace
                    break
                self._length += end - position
                self._decode(text[position:end].encode("ascii"))
                position = end
            if found is None:
                return
            character = text[position]
            if character.isspace():
                self._spaces += 1
            elif character == "=" and not self._spaces:
                self._padding += 1
                self._length += 1
            else:
                break
            position += 1
        if position < len(text):
            self._broken = True
            self._count_only(text[position:])

    def finish(self) -> InlineMedia:
        """What the data was; its file is written and flushed."""
        valid = not self._broken and self._padding_fits()
        if valid and self._tail:
            self._write(binascii.a2b_base64(self._tail + b"=" * (4 - len(self._tail))))
        self.file.flush()
        return InlineMedia(
            self.header, self.file, self._length, valid, self._size, self._sha256.hexdigest(), self._surrogate
        )

    @property
    def _count(self) -> int:
        return self._quads + len(self._tail)

    def _padding_fits(self) -> bool:
        """Whether b64decode(validate=True) takes this many base64 characters and then this
        many `=`: asked of a short string that ends the same way (its rules vary between
        Python versions, e.g. on `=` after a whole quad), with three `=` standing for more."""
        quads = "AAAA" if self._quads else ""
        same_end = quads + "A" * len(self._tail) + "=" * min(self._padding, 3)
        try:
            base64.b64decode(same_end, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True

    def _count_only(self, text: str) -> None:
        """After the data broke the rules: count characters, whitespace at the end left out."""
        kept = len(text.rstrip())
        if kept:
            self._length += self._spaces + kept
            self._spaces = len(text) - kept
        else:
            self._spaces += len(text)

    def _decode(self, run: bytes) -> None:
        data = self._tail + run if self._tail else run
        whole = len(data) - len(data) % 4
        self._tail = data[whole:]
        if whole:
            self._quads += whole
            self._write(binascii.a2b_base64(data[:whole] if whole < len(data) else data))

    def _write(self, data: bytes) -> None:
        self._sha256.update(data)
        self._size += len(data)
        self.file.write(data)


# -- the request's files ------------------------------------------------------------------------


def uploads_folder() -> Path:
    """Where a request's inline media is decoded: beside the stored media (so a link can keep it)."""
    folder = Path(current_app.config["DATA_DIR"]) / "media" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def inline_file_open(folder: Path) -> BinaryIO:
    """An unnamed file in `folder` (O_TMPFILE where the system has it, else one unlinked at once),
    closed with the request (`inline_files_close`)."""
    try:
        descriptor = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):  # no O_TMPFILE here, or not on this file system
        file = tempfile.TemporaryFile(dir=folder)
    else:
        file = open(descriptor, "w+b")
    if has_app_context():
        g.setdefault("inline_files", []).append(file)
    return file


def inline_media_keep(placeholder: str, media: InlineMedia) -> None:
    """Remember `media` under the string the body now holds in its place."""
    g.setdefault("inline_media", {})[placeholder] = media


def inline_media_find(source: object) -> InlineMedia | None:
    """The inline media a body's string stands for, if it is one."""
    if not isinstance(source, str) or not has_app_context():
        return None
    return g.get("inline_media", {}).get(source)


def inline_files_close(_error: BaseException | None = None) -> None:
    """Close (and so remove) the request's files: registered to run when each request ends."""
    for file in g.pop("inline_files", ()):
        file.close()
    g.pop("inline_media", None)


def media_file_head(media: MediaFile, size: int = 4096) -> bytes:
    """The first bytes of the file (its format is read from them)."""
    return os.pread(media.file.fileno(), size, 0)
