"""A JSON body read as it streams in, its inline media decoded to disk on the way.

`JsonSpooler` is fed a body in pieces and copies its JSON, except for a string that grows
past `spool_after` bytes and turns out to be a base64 data URL (`data:<type>;base64,...`):
that string's data goes through an `InlineDecoder` into a file
(services/messaging/inline.py), and the copy gets a stand-in string in its place: the data
URL's header, `spool_after` characters of filler and a mark no client sends. The copy is then parsed and
checked as any body is (blueprints/contract/wiring.py): the stand-in passes the schemas as
the data URL would (it starts as one, and is longer than any other field takes), and the
media service finds the file by it. So neither the body, nor the base64 text, nor the decoded
bytes are ever held whole.

Only strings are looked into here; the rest of JSON's rules are the parser's, on the copy. A
string decoded to a file is held to JSON's rules for strings here (its escapes, no control
characters, UTF-8), so the copy is valid JSON exactly when the body is. Why not a streaming
JSON library: ijson and json-stream hand each string over whole, which is what must not
happen here (README, "Large uploads").
"""

from __future__ import annotations

import codecs
import json
import re
import secrets
from collections.abc import Callable
from typing import BinaryIO

from services.messaging.inline import ALPHABET, InlineDecoder, InlineMedia

# A string longer than this (bytes as sent) is looked at: a data URL goes to a file.
SPOOL_AFTER = 64 * 1024
# What the schemas take as a data URL (blueprints/schemas/messages.py); what the media
# service takes is its own, stricter check, made on the header kept with the file.
DATA_URL = re.compile("^data:[^,]*;base64,")
# What a string holds up to its end or a backslash that starts no (whole) escape: as sent...
VERBATIM = re.compile(rb'(?:[^"\\]++|\\[^u]|\\u[0-9a-fA-F]{4})*+')
# ... and, in a data URL's data, read by json.loads (escapes JSON has, whole).
CHARACTERS = re.compile(rb'(?:[^"\\]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+')
HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")

OUTSIDE, STRING, SPOOLED = "outside", "string", "spooled"


class InvalidJson(ValueError):
    """The body is not valid JSON (found while copying it)."""


class JsonSpooler:
    """Copies a JSON body fed in pieces, a long data URL's data decoded into a file on the way.

    `feed` each piece, then `finish` for the copy; `media` maps each stand-in string in the
    copy to its `InlineMedia`. `open_file` gives a new file to decode one data URL into.
    """

    def __init__(self, open_file: Callable[[], BinaryIO], *, spool_after: int = SPOOL_AFTER) -> None:
        self.media: dict[str, InlineMedia] = {}
        self._open_file = open_file
        self._spool_after = spool_after
        self._copy = bytearray()
        self._pending = b""  # the last bytes fed, kept until more come (an escape cut in two)
        self._head = b""  # the body's first bytes, until its encoding is known
        self._transcoder: codecs.IncrementalDecoder | None = None
        self._encoding_known = False
        self._state = OUTSIDE
        self._start = 0  # where the string being read starts in the copy (its opening quote)
        self._looked = False  # whether the long string being read was looked at already
        self._comma_from = 0  # where to look on for the end of its header (a comma)
        self._decoder: InlineDecoder | None = None
        self._again = b""

    def feed(self, data: bytes) -> None:
        """The next piece of the body."""
        if not self._encoding_known:
            self._head += data
            if len(self._head) < 4:
                return
            data, self._head = self._encoding(self._head), b""
        elif self._transcoder is not None:
            data = self._transcoded(data)
        self._run(data, final=False)

    def finish(self) -> bytes:
        """The copy of the whole body; InvalidJson if it ended inside a string."""
        if not self._encoding_known:
            self._run(self._encoding(self._head), final=False)
        if self._transcoder is not None:
            self._run(self._transcoded(b"", final=True), final=False)
        self._run(b"", final=True)
        if self._state != OUTSIDE:
            raise InvalidJson("the body ends inside a string")
        return bytes(self._copy)

    # -- encodings (JSON may come as UTF-16 or UTF-32, as json.loads reads it) -------------------

    def _encoding(self, head: bytes) -> bytes:
        self._encoding_known = True
        encoding = json.detect_encoding(head)
        if encoding in ("utf-8", "utf-8-sig"):  # the BOM is copied, and read by json.loads
            return head
        self._transcoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
        return self._transcoded(head)

    def _transcoded(self, data: bytes, final: bool = False) -> bytes:
        try:
            return self._transcoder.decode(data, final).encode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise InvalidJson("not text in its encoding") from None

    # -- reading ------------------------------------------------------------------------------

    def _run(self, data: bytes, *, final: bool) -> None:
        buffer = self._pending + data if self._pending else data
        self._pending = b""
        position = 0
        while position < len(buffer):
            if self._again:  # bytes already copied, to be read again (as a data URL's data)
                buffer, position, self._again = self._again + buffer[position:], 0, b""
            if self._state == OUTSIDE:
                position = self._outside(buffer, position)
            elif self._state == STRING:
                position = self._string(buffer, position, final)
            else:
                position = self._spooled(buffer, position, final)

    def _wait_for_more(self, buffer: bytes, position: int) -> int:
        self._pending = buffer[position:]
        return len(buffer)

    def _outside(self, buffer: bytes, position: int) -> int:
        quote = buffer.find(b'"', position)
        if quote == -1:
            self._copy += buffer[position:]
            return len(buffer)
        self._copy += buffer[position : quote + 1]
        self._state, self._start, self._looked, self._comma_from = STRING, len(self._copy) - 1, False, 0
        return quote + 1

    def _string(self, buffer: bytes, position: int, final: bool) -> int:
        """A string copied as it is, until it grows long enough to be looked at."""
        stop = VERBATIM.match(buffer, position).end()
        self._copy += buffer[position:stop]
        if not self._looked and len(self._copy) - self._start > self._spool_after and self._spool():
            return stop
        if stop == len(buffer):
            return stop
        if buffer[stop] == ord('"'):
            self._copy += b'"'
            self._state = OUTSIDE
            return stop + 1
        _escape_cut(buffer, stop, final)
        return self._wait_for_more(buffer, stop)

    def _spool(self) -> bool:
        """Look at a long string read so far: a data URL's data goes to a file from now on (what
        was read of it is read again, as data), anything else stays as it is."""
        raw = self._copy[self._start + 1 :]
        if not raw.startswith(b"data:"):
            self._looked = len(raw) >= 5 or not b"data:".startswith(raw)
            return False
        comma = raw.find(b",", self._comma_from)
        if comma == -1:  # the header is not whole yet
            self._comma_from = len(raw)
            self._looked = len(raw) > 4 * self._spool_after  # too long for a header: not one
            return False
        self._looked = True
        try:
            header = json.loads(b'"' + raw[: comma + 1] + b'"')
        except ValueError:
            raise InvalidJson("a string breaks JSON's rules") from None
        if DATA_URL.fullmatch(header) is None:
            return False
        self._decoder = InlineDecoder(header, self._open_file())
        self._again = bytes(raw[comma + 1 :])
        del self._copy[self._start :]
        self._state = SPOOLED
        return True

    def _spooled(self, buffer: bytes, position: int, final: bool) -> int:
        """A data URL's data, decoded into its file."""
        quote = buffer.find(b'"', position)
        end = quote if quote != -1 else len(buffer)
        segment = buffer[position:end]
        if b"\\" in segment:
            segment = segment.replace(b"\\/", b"/")  # how some encoders write each "/" of base64
        if segment.translate(None, ALPHABET):  # anything but base64 characters: read it as JSON does
            return self._characters(buffer, position, final)
        self._decoder.feed_base64(segment)
        if quote == -1:
            return len(buffer)
        self._close()
        return quote + 1

    def _characters(self, buffer: bytes, position: int, final: bool) -> int:
        """Characters of a data URL's data that are not all base64 (escapes, whitespace, anything):
        json.loads reads them, up to the string's end or to what cannot be read before more comes."""
        stop = CHARACTERS.match(buffer, position).end()
        ends = stop < len(buffer) and buffer[stop] == ord('"')
        if stop < len(buffer) and not ends:
            _escape_cut(buffer, stop, final)
        cut = stop if ends or final else _readable_end(buffer, position, stop)
        try:
            text = json.loads(b'"' + buffer[position:cut] + b'"')
        except ValueError:
            raise InvalidJson("a string breaks JSON's rules") from None
        self._decoder.feed_text(text)
        if ends:
            self._close()
            return stop + 1
        return self._wait_for_more(buffer, cut)

    def _close(self) -> None:
        """The data URL ended: its stand-in goes into the copy."""
        media = self._decoder.finish()
        # As long as the data URL was said to be at least (longer than any other field takes).
        filler = "A" * max(0, self._spool_after - len(media.header))
        stand_in = f"{media.header}{filler}#inline-{secrets.token_hex(16)}"
        self.media[stand_in] = media
        self._copy += json.dumps(stand_in).encode()
        self._state, self._decoder = OUTSIDE, None


def _escape_cut(buffer: bytes, position: int, final: bool) -> None:
    """A backslash that starts no escape JSON has: InvalidJson, unless more may complete it."""
    if len(buffer) - position >= 6 or final:
        raise InvalidJson("an escape JSON does not have")


def _readable_end(buffer: bytes, start: int, stop: int) -> int:
    """Where `buffer[start:stop]`, the end of a piece, can be cut for json.loads: before a
    character cut in two, and before a \\uD800-\\uDBFF escape whose other half may come next."""
    for back in range(1, min(4, stop - start) + 1):
        byte = buffer[stop - back]
        if byte < 0x80:
            break
        if byte >= 0xC0:  # the first byte of a character of 2, 3 or 4
            if back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
                stop -= back
            break
    if stop - start >= 6 and HIGH_SURROGATE.fullmatch(buffer, stop - 6, stop):
        backslashes = 0
        while stop - 7 - backslashes >= start and buffer[stop - 7 - backslashes] == ord("\\"):
            backslashes += 1
        if backslashes % 2 == 0:  # the backslash starts an escape (it is not the end of a "\\\\")
            stop -= 6
    return stop
