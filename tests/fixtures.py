"""Sample data the tests share: a small file of each media kind, and data URLs of them."""

from __future__ import annotations

import base64
import io

from PIL import Image


def _picture(format: str, color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format=format)
    return buffer.getvalue()


def data_url(data: bytes, mimetype: str = "image/png") -> str:
    return f"data:{mimetype};base64,{base64.b64encode(data).decode()}"


PNG = _picture("PNG", "blue")
JPEG = _picture("JPEG", "red")
# Just enough of each format for the server to recognise it from its first bytes.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64)
OGG = b"OggS\x00\x02" + bytes(64)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(32)
