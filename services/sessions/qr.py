"""QR codes as PNG data URLs, the form the WAMessenger API returns them in."""

import base64
import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def qr_data_url(payload: str) -> str:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(payload)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
