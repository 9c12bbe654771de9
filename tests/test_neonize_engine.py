"""The neonize engine: event mapping, send mapping, restore on start, and the offline path.

Engine-level tests run neonize's Python for real with a stand-in for its Go library
(tests/neonize_go.py), feeding neonize's own protobuf events through neonize's own
dispatch. The end-to-end tests at the bottom run the real Go library, offline.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:
    import engines.neonize  # noqa: F401  (first: it loads neonize the way the engine needs it)
except ImportError as exc:  # CI installs requirements.txt, so these run there
    pytest.skip(f"neonize cannot be imported: {exc}", allow_module_level=True)

from neonize.proto import Neonize_pb2 as go  # noqa: E402
from neonize.proto.waCommon import WACommon_pb2 as wa_common  # noqa: E402
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa  # noqa: E402
from PIL import Image  # noqa: E402

from engines.base import QR_EXPIRED_REASON, EngineError, EngineEventKind, EngineSettings  # noqa: E402
from engines.neonize.engine import NeonizeEngine  # noqa: E402
from engines.neonize.gate import GATE  # noqa: E402
from engines.outgoing import ContactCard, Location, Outgoing, Poll, Reaction  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.neonize_go import FakeGo  # noqa: E402

pytestmark = pytest.mark.neonize

PHONE = "919876543210"
REPO = Path(__file__).resolve().parent.parent


class Engine:
    """A NeonizeEngine on the Go stand-in, with the events it reported."""

    def __init__(self, tmp_path: Path, **options) -> None:
        self.go = FakeGo()
        self.events: queue.Queue = queue.Queue()
        settings = EngineSettings(data_dir=tmp_path / "engines", public_url="http://127.0.0.1:5000")
        options = {"probe_address": "", "connect_gate_seconds": 0.05, "reconnect_base_seconds": 0.05} | options
        self.engine = NeonizeEngine(self.events.put, settings, go=self.go, **options)

    def next(self, kind: EngineEventKind, session_id: str = "s1", timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event.kind == kind and event.session_id == session_id:
                return event
        raise AssertionError(f"no {kind} event for {session_id} within {timeout}s")

    def quiet(self, seconds: float = 0.3) -> list:
        """The events reported in the next `seconds` (expected: none of consequence)."""
        time.sleep(seconds)
        seen = []
        while not self.events.empty():
            seen.append(self.events.get())
        return seen

    def online(self, session_id: str = "s1", phone: str = PHONE) -> None:
        """Start a session whose stored device WhatsApp accepts."""
        attempts = self.go.connect_count(session_id)
        self.engine.session_start(session_id)
        self.go.connection(session_id, number=attempts + 1)
        self.go.log_in(session_id, phone)
        assert self.next(EngineEventKind.CONNECTED, session_id).data == {"phone": phone}


@pytest.fixture
def nz(tmp_path):
    engine = Engine(tmp_path)
    yield engine
    engine.engine.shutdown()


def store_with_device(path: Path, phone: str = PHONE) -> None:
    """A device store holding a paired device, made the way whatsmeow makes it.

    The real Go library creates the file and its tables; the device row is what pairing
    writes (random keys of the right sizes).
    """
    from neonize.client import ClientFactory

    path.parent.mkdir(parents=True, exist_ok=True)
    with GATE.exclusive():
        assert ClientFactory.get_all_devices_from_db(str(path)) == []
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key, signed_pre_key,"
            " signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key,"
            " adv_device_sig, push_name) VALUES (?, 4242, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 'Shop')",
            (f"{phone}:12@s.whatsapp.net", *(os.urandom(n) for n in (32, 32, 32, 64, 32, 16, 64, 32, 64))),
        )


def message_event(content: wa.Message, *, sender: go.JID, chat: go.JID | None = None, **source) -> go.Message:
    return go.Message(
        Info=go.MessageInfo(
            ID="3A0123456789ABCDEF",
            Pushname="Ana",
            Timestamp=1_700_000_000_123,  # milliseconds
            MessageSource=go.MessageSource(Chat=chat or sender, Sender=sender, **source),
        ),
        Message=content,
    )


def user(phone: str) -> go.JID:
    return go.JID(User=phone, Server="s.whatsapp.net")


# -- pairing ----------------------------------------------------------------------------------


def test_qr_codes_become_qr_events_until_they_run_out(nz):
    nz.engine.session_start("s1")
    nz.go.show_qr("s1", "2@first,code")
    first = nz.next(EngineEventKind.QR)
    assert first.data["payload"] == "2@first,code" and first.data["number"] == 1
    nz.go.show_qr("s1", "2@second,code")
    assert nz.next(EngineEventKind.QR).data["number"] == 2

    nz.go.pairing_ends("s1", "timeout")  # whatsmeow's QR channel ran out of codes

    gone = nz.next(EngineEventKind.DISCONNECTED)
    assert gone.data == {"reason": QR_EXPIRED_REASON, "loggedOut": False}
    assert "s1" in nz.go.stops and nz.engine.active_sessions() == []


def test_a_pairing_code_for_a_phone_number_replaces_the_qr(nz):
    nz.engine.session_start("s1")
    with pytest.raises(EngineError) as early:
        nz.engine.pair_code("s1", PHONE)  # no QR yet: whatsmeow's PairPhone needs the open pairing socket
    assert early.value.code == "NOT_PAIRING"
    nz.go.show_qr("s1", "2@first")
    nz.next(EngineEventKind.QR)

    assert nz.engine.pair_code("s1", PHONE) == "ABCD-EFGH"
    assert nz.go.pair_requests[0].phone == PHONE and nz.go.pair_requests[0].showPushNotification

    nz.go.show_qr("s1", "2@second")  # the codes keep counting down, unseen
    assert not [event for event in nz.quiet() if event.kind == EngineEventKind.QR]
    nz.go.emit("s1", go.PairStatus(Status=go.PairStatus.SUCCESS, ID=go.JID(User=PHONE, Server="s.whatsapp.net")))
    nz.go.emit("s1", go.Connected(status=True))
    assert nz.next(EngineEventKind.CONNECTED).data == {"phone": PHONE}


def test_a_failed_pairing_disconnects_with_the_reason(nz):
    nz.engine.session_start("s1")
    nz.go.show_qr("s1", "2@first")
    nz.go.emit("s1", go.PairStatus(Status=go.PairStatus.ERROR, Error="pair-device signature mismatch"))
    gone = nz.next(EngineEventKind.DISCONNECTED)
    assert "pair-device signature mismatch" in gone.data["reason"] and gone.data["loggedOut"] is False


# -- connection events ------------------------------------------------------------------------


def test_connected_drops_and_reconnects(nz):
    nz.online()
    nz.go.emit("s1", go.Disconnected(status=True))
    assert nz.next(EngineEventKind.RECONNECTING).data == {}
    nz.go.emit("s1", go.Connected(status=True))  # whatsmeow reconnected by itself
    assert nz.next(EngineEventKind.CONNECTED).data == {"phone": PHONE}
    assert nz.go.connect_count("s1") == 1


def test_connected_phone_comes_from_the_store_when_go_has_not_said(nz, tmp_path):
    store_with_device(tmp_path / "engines" / "neonize" / "s1.db", phone="447700900123")
    nz.engine.session_start("s1")
    nz.go.connection("s1")
    nz.go.emit("s1", go.Connected(status=True))
    assert nz.next(EngineEventKind.CONNECTED).data == {"phone": "447700900123"}


def test_logged_out_from_the_phone_clears_the_store(nz, tmp_path):
    store = tmp_path / "engines" / "neonize" / "s1.db"
    store_with_device(store)
    nz.online()
    assert nz.engine.is_paired("s1")

    nz.go.emit("s1", go.LoggedOut(OnConnect=False, Reason=go.LOGGED_OUT))

    gone = nz.next(EngineEventKind.DISCONNECTED)
    assert gone.data["loggedOut"] is True and "unlinked from the phone" in gone.data["reason"]
    assert not store.exists() and not nz.engine.is_paired("s1")
    assert nz.engine.active_sessions() == []


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (go.StreamReplaced(), "opened by another"),
        (go.ClientOutdated(), "outdated"),
    ],
)
def test_stream_replaced_and_outdated_client_are_errors_without_retry(nz, event, words):
    nz.online()
    nz.go.emit("s1", event)
    assert words in nz.next(EngineEventKind.ERROR).data["reason"]
    nz.quiet(0.4)
    assert nz.go.connect_count("s1") == 1 and nz.engine.active_sessions() == []


def test_a_temporary_ban_is_an_error_and_the_session_returns_after_it(nz):
    nz.online()
    nz.go.emit("s1", go.TemporaryBan(Code=go.TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE, Expire=1))
    reason = nz.next(EngineEventKind.ERROR).data["reason"]
    assert "temporarily banned" in reason and "same message too many times" in reason
    nz.go.connection("s1", number=2, timeout=5)  # tried again once the ban (1 s) was over


def test_a_refused_connection_is_an_error_and_is_retried(nz):
    nz.online()
    nz.go.emit("s1", go.ConnectFailure(Reason=go.SERVICE_UNAVAILABLE, Message="try later"))
    reason = nz.next(EngineEventKind.ERROR).data["reason"]
    assert "refused the connection (service unavailable: try later)" in reason and "attempt 1" in reason
    nz.go.connection("s1", number=2)


def test_a_failed_dial_is_an_error_retried_with_growing_waits(tmp_path):
    nz = Engine(tmp_path, reconnect_base_seconds=0.1, reconnect_max_seconds=0.4)
    nz.go.connect_error = "failed to dial whatsapp web websocket: dial tcp: lookup web.whatsapp.com: no such host"
    try:
        nz.engine.session_start("s1")
        reasons = [nz.next(EngineEventKind.ERROR).data["reason"] for _ in range(4)]
    finally:
        nz.engine.shutdown()
    assert reasons[0].startswith("Cannot reach WhatsApp: failed to dial whatsapp web websocket (no such host)")
    assert [reason.split("Retrying in ")[1] for reason in reasons] == [
        "0.1 s (attempt 1).",
        "0.2 s (attempt 2).",
        "0.4 s (attempt 3).",
        "0.4 s (attempt 4).",  # capped
    ]


# -- inbound messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "text"),
    [
        (wa.Message(conversation="Hi there"), "text", "Hi there"),
        (wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text="See https://x.y")), "text", "See https://x.y"),
        (wa.Message(imageMessage=wa.ImageMessage(caption="Our menu", mimetype="image/jpeg")), "image", "Our menu"),
        (wa.Message(imageMessage=wa.ImageMessage(mimetype="image/jpeg")), "image", "[image]"),
        (wa.Message(videoMessage=wa.VideoMessage(caption="Clip")), "video", "Clip"),
        (wa.Message(audioMessage=wa.AudioMessage(PTT=True)), "audio", "[voice note]"),
        (wa.Message(documentMessage=wa.DocumentMessage(fileName="invoice.pdf")), "document", "[document: invoice.pdf]"),
        (wa.Message(stickerMessage=wa.StickerMessage()), "sticker", "[sticker]"),
        (
            wa.Message(locationMessage=wa.LocationMessage(degreesLatitude=-6.2, degreesLongitude=106.8, name="Monas")),
            "location",
            "[location: -6.200000, 106.800000 (Monas)]",
        ),
        (wa.Message(contactMessage=wa.ContactMessage(displayName="Bob")), "contact", "[contact: Bob]"),
        (wa.Message(pollCreationMessageV3=wa.PollCreationMessage(name="Lunch?")), "poll", "[poll: Lunch?]"),
        (wa.Message(reactionMessage=wa.ReactionMessage(text="👍")), "reaction", "[reaction: 👍]"),
        (
            wa.Message(
                ephemeralMessage=wa.FutureProofMessage(
                    message=wa.Message(viewOnceMessageV2=wa.FutureProofMessage(message=wa.Message(conversation="Psst")))
                )
            ),
            "text",
            "Psst",
        ),
        (
            wa.Message(
                senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(groupID="g"),
                imageMessage=wa.ImageMessage(caption="Group photo"),
            ),
            "image",
            "Group photo",
        ),
    ],
)
def test_inbound_messages_of_every_kind(nz, content, kind, text):
    nz.online()
    nz.go.emit("s1", message_event(content, sender=user("6281234567890")))
    data = nz.next(EngineEventKind.MESSAGE).data
    assert (data["type"], data["text"], data["sender"]) == (kind, text, "6281234567890")
    assert data["waId"] == "3A0123456789ABCDEF" and data["pushName"] == "Ana"
    assert data["timestamp"].timestamp() == pytest.approx(1_700_000_000.123)


def test_lid_senders_are_resolved_to_phone_numbers(nz):
    nz.online()
    lid = go.JID(User="123456789012345", Server="lid")
    group = go.JID(User="120363000000000000", Server="g.us")
    nz.go.emit(
        "s1",
        message_event(
            wa.Message(conversation="alt"), sender=lid, chat=group, IsGroup=True, SenderAlt=user("6281111111111")
        ),
    )
    with_alt = nz.next(EngineEventKind.MESSAGE).data
    assert (with_alt["sender"], with_alt["chat"], with_alt["isGroup"]) == (
        "6281111111111",
        "120363000000000000@g.us",
        True,
    )

    nz.go.lid_map["123456789012345"] = "6282222222222"  # known to the device store's LID map
    nz.go.emit("s1", message_event(wa.Message(conversation="map"), sender=lid))
    assert nz.next(EngineEventKind.MESSAGE).data["sender"] == "6282222222222"

    nz.go.lid_map.clear()  # WhatsApp gave no phone number at all
    nz.go.emit("s1", message_event(wa.Message(conversation="hidden"), sender=lid))
    hidden = nz.next(EngineEventKind.MESSAGE).data
    assert hidden["sender"] == "123456789012345" and hidden["senderLid"] is True


def test_own_messages_status_updates_and_protocol_messages_are_not_inbound(nz):
    nz.online()
    contact = user("6281234567890")
    nz.go.emit("s1", message_event(wa.Message(conversation="from my phone"), sender=contact, IsFromMe=True))
    nz.go.emit(
        "s1",
        message_event(wa.Message(conversation="story"), sender=contact, chat=go.JID(User="status", Server="broadcast")),
    )
    nz.go.emit("s1", message_event(wa.Message(protocolMessage=wa.ProtocolMessage(type=0)), sender=contact))
    nz.go.emit("s1", message_event(wa.Message(conversation="last"), sender=contact))
    assert nz.next(EngineEventKind.MESSAGE).data["text"] == "last"
    assert [event for event in nz.quiet(0.2) if event.kind == EngineEventKind.MESSAGE] == []


# -- receipts and the send mapping -------------------------------------------------------------


def test_receipts_are_matched_to_our_message_ids(nz):
    nz.online()
    result = nz.engine.send_text("s1", "6281234567890", "Hello", wa_id="3EB0OURS000000000001")
    assert result.wa_id == "3EB0OURS000000000001"
    theirs = "3EB0" + "1".zfill(18)  # the id whatsmeow gave it (the stand-in counts from 1)
    chat = go.MessageSource(Chat=user("6281234567890"), Sender=user("6281234567890"))
    for receipt_type, status in (
        (go.Receipt.DELIVERED, "delivered"),
        (go.Receipt.READ, "read"),
        (go.Receipt.PLAYED, "played"),
    ):
        nz.go.emit(
            "s1",
            go.Receipt(MessageSource=chat, MessageIDs=[theirs, "NOT-OURS"], Type=receipt_type, Timestamp=1_700_000_100),
        )
        receipt = nz.next(EngineEventKind.RECEIPT).data
        assert receipt["waId"] == "3EB0OURS000000000001" and receipt["status"] == status
        assert receipt["timestamp"].timestamp() == 1_700_000_100
    nz.go.emit("s1", go.Receipt(MessageSource=chat, MessageIDs=[theirs], Type=go.Receipt.READ_SELF))
    assert [event for event in nz.quiet(0.2) if event.kind == EngineEventKind.RECEIPT] == []


def test_text_is_sent_as_a_plain_conversation_to_whatsapps_jid(nz):
    nz.online()
    result = nz.engine.send_text("s1", "6281234567890", "Hello @6281111111111", wa_id="3EB0AAAAAAAAAAAAAAAAAA")
    assert nz.go.checked == ["+6281234567890"]
    [sent] = nz.go.sent
    assert (sent.to.User, sent.to.Server) == ("6281234567890", "s.whatsapp.net")
    assert sent.message == wa.Message(conversation="Hello @6281111111111")
    assert result.timestamp.timestamp() == 1_700_000_000


def test_a_message_id_is_sent_once_even_when_sent_again(nz):
    nz.online()
    first = nz.engine.send_text("s1", "6281234567890", "Once", wa_id="3EB0BBBBBBBBBBBBBBBBBB")
    again = nz.engine.send_text("s1", "6281234567890", "Once", wa_id="3EB0BBBBBBBBBBBBBBBBBB")
    assert len(nz.go.sent) == 1 and again == first


def test_a_timed_out_send_is_not_repeated_on_its_own(nz):
    nz.online()
    nz.go.send_error = "failed to send message: info query timed out"
    with pytest.raises(EngineError) as first:
        nz.engine.send_text("s1", "6281234567890", "Maybe", wa_id="3EB0CCCCCCCCCCCCCCCCCC")
    assert first.value.code == "ENGINE_TIMEOUT" and first.value.transient
    nz.go.send_error = ""
    with pytest.raises(EngineError) as retry:  # WhatsApp may have it: not sent twice
        nz.engine.send_text("s1", "6281234567890", "Maybe", wa_id="3EB0CCCCCCCCCCCCCCCCCC")
    assert retry.value.code == "ENGINE_TIMEOUT" and not retry.value.transient
    assert "may have been delivered" in retry.value.message and nz.go.sent == []
    nz.engine.send_text("s1", "6281234567890", "Maybe", wa_id="3EB0CCCCCCCCCCCCCCCCCC")  # the owner's retry
    assert len(nz.go.sent) == 1


@pytest.mark.parametrize(
    ("error", "code", "transient"),
    [
        ("websocket not connected", "SESSION_NOT_CONNECTED", True),
        ("server returned error 429: rate-overlimit", "OVERLOADED", True),
        ("server returned error 401", "UPSTREAM_AUTH", True),
        ("server returned error 406", "REJECTED", False),
        ("server returned error 500", "UPSTREAM_ERROR", True),
    ],
)
def test_send_failures_map_to_the_engine_codes(nz, error, code, transient):
    nz.online()
    nz.go.send_error = error
    with pytest.raises(EngineError) as failed:
        nz.engine.send_text("s1", "6281234567890", "Hi", wa_id="3EB0DDDDDDDDDDDDDDDDDD")
    assert (failed.value.code, failed.value.transient) == (code, transient)
    nz.go.send_error = ""
    nz.engine.send_text("s1", "6281234567890", "Hi", wa_id="3EB0DDDDDDDDDDDDDDDDDD")  # it did not go out: it may
    assert len(nz.go.sent) == 1


def test_error_463_says_whatsapp_refused_a_new_chat_for_the_reach_out_limit(nz):
    nz.online()
    nz.go.send_error = "server returned error 463"
    with pytest.raises(EngineError) as failed:
        nz.engine.send_text("s1", "6281234567890", "Hi", wa_id="3EB0FFFFFFFFFFFFFFFFFF")
    assert failed.value.transient and "error 463: reach-out limit" in failed.value.message
    assert nz.engine.carried("s1", "3EB0FFFFFFFFFFFFFFFFFF") is False  # it did not go out: a retry is safe


def test_a_send_is_carried_once_acknowledged_and_unknown_while_unconfirmed(nz):
    nz.online()
    assert nz.engine.carried("s1", "3EB0A1A1A1A1A1A1A1A1A1") is False
    nz.engine.send_text("s1", "6281234567890", "Hi", wa_id="3EB0A1A1A1A1A1A1A1A1A1")
    assert nz.engine.carried("s1", "3EB0A1A1A1A1A1A1A1A1A1") is True
    nz.go.send_error = "failed to send message: info query timed out"
    with pytest.raises(EngineError):
        nz.engine.send_text("s1", "6281234567890", "Maybe", wa_id="3EB0A2A2A2A2A2A2A2A2A2")
    assert nz.engine.carried("s1", "3EB0A2A2A2A2A2A2A2A2A2") is None  # WhatsApp may have it


def test_unanswered_keepalives_fail_the_probe_and_a_reconnect_brings_the_session_back(nz):
    nz.online()
    assert nz.engine.probe("s1") is True
    nz.go.emit("s1", go.KeepAliveTimeout(ErrorCount=2, LastSuccess=1_700_000_000))
    wait_for(lambda: nz.engine.probe("s1") is False, message="the probe failing")
    nz.go.emit("s1", go.KeepAliveRestored())
    wait_for(lambda: nz.engine.probe("s1") is True, message="the probe passing again")

    nz.go.emit("s1", go.KeepAliveTimeout(ErrorCount=1, LastSuccess=1_700_000_030))
    wait_for(lambda: nz.engine.probe("s1") is False, message="the probe failing")
    nz.engine.reconnect("s1")
    assert nz.next(EngineEventKind.RECONNECTING).data == {}
    nz.go.connection("s1", number=2)  # a new connection at once, no backoff
    nz.go.log_in("s1", PHONE)
    assert nz.next(EngineEventKind.CONNECTED).data == {"phone": PHONE}
    assert nz.engine.probe("s1") is True
    assert nz.engine.active_sessions() == ["s1"]
    assert not [event for event in nz.quiet(0.2) if event.kind != EngineEventKind.CONTACTS]


def test_a_session_not_connected_is_not_probed(nz):
    with pytest.raises(EngineError) as failed:
        nz.engine.probe("s1")
    assert failed.value.code == "SESSION_NOT_CONNECTED"


def test_numbers_not_on_whatsapp_are_not_sent_to(nz):
    nz.online()
    with pytest.raises(EngineError) as failed:
        nz.engine.send_text("s1", "6281234560000", "Hi", wa_id="3EB0EEEEEEEEEEEEEEEEEE")
    assert failed.value.code == "NUMBER_NOT_ON_WHATSAPP" and not failed.value.transient
    assert nz.go.sent == []
    assert nz.engine.check_numbers("s1", ["6281234567890", "6281234560000"]) == {
        "6281234567890": "6281234567890@s.whatsapp.net",
        "6281234560000": None,
    }


def test_nothing_reaches_go_for_a_session_that_is_not_logged_in(nz):
    nz.engine.session_start("s1")
    nz.go.show_qr("s1", "2@pairing")
    for call in (
        lambda: nz.engine.send_text("s1", "6281234567890", "Hi", wa_id="3EB0FFFFFFFFFFFFFFFFFF"),
        lambda: nz.engine.check_numbers("s1", ["6281234567890"]),
        lambda: nz.engine.send_text("unknown", "6281234567890", "Hi", wa_id="3EB0FFFFFFFFFFFFFFFFF0"),
    ):
        with pytest.raises(EngineError) as failed:
            call()
        assert failed.value.code == "SESSION_NOT_CONNECTED" and failed.value.transient
    assert nz.go.checked == [] and nz.go.sent == []


def png(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_is_uploaded_from_bytes_and_sent_with_its_thumbnail(nz):
    nz.online()
    data = png()
    image = Outgoing("image", media=data, mimetype="image/png", text="Our menu")
    nz.engine.send("s1", "6281234567890", image, wa_id="3EB0IMAGE0000000000000")
    assert nz.go.uploads[0][0] == data
    image = nz.go.sent[0].message.imageMessage
    assert (image.caption, image.mimetype, image.directPath, image.fileLength) == (
        "Our menu",
        "image/png",
        "/v/t62/1",
        len(data),
    )
    assert Image.open(io.BytesIO(image.JPEGThumbnail)).format == "JPEG"


def test_a_document_keeps_its_name_and_type(nz):
    nz.online()
    document = Outgoing(
        "document", media=b"%PDF-1.4 tiny", mimetype="application/pdf", filename="invoice.pdf", text="March"
    )
    nz.engine.send("s1", "6281234567890", document, wa_id="3EB0DOCUMENT00000000000")
    document = nz.go.sent[0].message.documentMessage
    assert (document.fileName, document.title, document.mimetype, document.caption) == (
        "invoice.pdf",
        "invoice.pdf",
        "application/pdf",
        "March",
    )
    assert nz.go.uploads[0][0] == b"%PDF-1.4 tiny"


def test_location_and_contact_messages(nz):
    nz.online()
    place = Outgoing("location", location=Location(-6.1754, 106.8272, name="Monas"))
    card = Outgoing("contact", contact=ContactCard("Ana; Sales", "6285555555555"))
    nz.engine.send("s1", "6281234567890", place, wa_id="3EB0LOCATION0000000000")
    nz.engine.send("s1", "6281234567890", card, wa_id="3EB0CONTACT00000000000")
    location, contact = (sent.message for sent in nz.go.sent)
    assert location == wa.Message(
        locationMessage=wa.LocationMessage(degreesLatitude=-6.1754, degreesLongitude=106.8272, name="Monas")
    )
    assert contact.contactMessage.displayName == "Ana; Sales"
    assert "FN:Ana\\; Sales\n" in contact.contactMessage.vcard
    assert "TEL;type=CELL;type=VOICE;waid=6285555555555:+6285555555555" in contact.contactMessage.vcard


def test_an_image_that_is_not_one_is_rejected_before_upload(nz):
    nz.online()
    with pytest.raises(EngineError) as failed:
        not_an_image = Outgoing("image", media=b"not an image", mimetype="image/png")
        nz.engine.send("s1", "6281234567890", not_an_image, wa_id="3EB0BADIMAGE0000000000")
    assert failed.value.code == "REJECTED" and nz.go.uploads == [] and nz.go.sent == []


def ffmpeg(test):
    """Audio and video need ffmpeg (CI installs it). neonize's ffmpeg helper leaves its pipes
    for the garbage collector to close, which warns."""
    test = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")(test)
    return pytest.mark.skipif(not shutil.which("ffprobe"), reason="needs ffmpeg")(test)


def media_file(tmp_path: Path, name: str, *args: str) -> bytes:
    target = tmp_path / name
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args, str(target)], check=True, timeout=60)
    return target.read_bytes()


@ffmpeg
def test_a_voice_note_is_ogg_opus_with_its_duration(nz, tmp_path):
    nz.online()
    data = media_file(tmp_path, "note.ogg", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "libopus")
    voice = Outgoing("ptt", media=data, mimetype="audio/ogg")
    nz.engine.send("s1", "6281234567890", voice, wa_id="3EB0VOICE0000000000000")
    audio = nz.go.sent[0].message.audioMessage
    assert (audio.PTT, audio.mimetype, audio.seconds) == (True, "audio/ogg; codecs=opus", 2)


@ffmpeg
def test_a_video_carries_a_thumbnail_and_caption(nz, tmp_path):
    nz.online()
    data = media_file(
        tmp_path, "clip.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120", "-pix_fmt", "yuv420p"
    )
    video = Outgoing("video", media=data, mimetype="video/mp4", text="Clip")
    nz.engine.send("s1", "6281234567890", video, wa_id="3EB0VIDEO0000000000000")
    video = nz.go.sent[0].message.videoMessage
    assert video.caption == "Clip" and video.mimetype == "video/mp4" and video.JPEGThumbnail


# -- stop, logout, shutdown -------------------------------------------------------------------


def test_stop_keeps_the_pairing_and_logout_forgets_it(nz, tmp_path):
    store = tmp_path / "engines" / "neonize" / "s1.db"
    store_with_device(store)
    nz.online()
    nz.engine.session_stop("s1", "Disconnected by the owner")
    assert nz.next(EngineEventKind.DISCONNECTED).data == {"reason": "Disconnected by the owner", "loggedOut": False}
    assert nz.engine.is_paired("s1") and "s1" in nz.go.stops

    nz.online()  # restarted from the same store
    nz.engine.session_logout("s1", "Logged out by the owner")
    gone = nz.next(EngineEventKind.DISCONNECTED)
    assert gone.data == {"reason": "Logged out by the owner", "loggedOut": True}
    assert not store.exists()


def test_shutdown_ends_every_session_quickly(tmp_path):
    nz = Engine(tmp_path)
    for number in range(5):
        nz.engine.session_start(f"s{number}")
        nz.go.connection(f"s{number}")
    started = time.monotonic()
    nz.engine.shutdown()
    assert time.monotonic() - started < 2
    assert sorted(nz.go.stops) == [f"s{number}" for number in range(5)]


# -- through the app, on the real Go library, offline ----------------------------------------------


def _online() -> bool:
    try:
        socket.getaddrinfo("web.whatsapp.com", 443)
    except OSError:
        return False
    return True


@pytest.fixture
def config_overrides():
    return {
        "WA_ENGINE": "neonize",
        "NEONIZE_RECONNECT_BASE_SECONDS": 0.3,
        "NEONIZE_RECONNECT_MAX_SECONDS": 0.6,
        # A closed local port: refused at once, with or without a network.
        "NEONIZE_PROBE_ADDRESS": "127.0.0.1:9",
    }


def session_status(client, account, session_id: str) -> dict:
    return client.get(f"/api/sessions/{session_id}", headers=account.headers).get_json()


def test_offline_a_new_session_says_whatsapp_cannot_be_reached_and_keeps_trying(app, client, account, runtime):
    started = time.monotonic()
    created = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers)
    assert created.status_code == 201
    session_id = created.get_json()["sessionId"]

    failed = wait_for(lambda: (s := session_status(client, account, session_id))["status"] == "error" and s, 15)
    assert time.monotonic() - started < 15
    assert failed["statusReason"].startswith("Cannot reach WhatsApp: 127.0.0.1:9 is unreachable (Connection refused)")
    wait_for(lambda: "(attempt 3)" in session_status(client, account, session_id)["statusReason"], 10)
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert qr["qrCode"] is None and qr["status"] == "error" and "Cannot reach WhatsApp" in qr["reason"]

    stopping = time.monotonic()
    runtime.stop()
    assert time.monotonic() - stopping < 5


@pytest.mark.skipif(_online(), reason="needs a machine that cannot reach WhatsApp")
def test_offline_neonizes_own_dial_failure_is_reported_and_retried(app, client, account, runtime):
    app.extensions["wagate.engine_host"].engine.probe_address = ""  # let neonize dial for itself
    session_id = client.post("/api/sessions", headers=account.headers).get_json()["sessionId"]
    failed = wait_for(lambda: (s := session_status(client, account, session_id))["status"] == "error" and s, 15)
    assert failed["statusReason"].startswith("Cannot reach WhatsApp: failed to dial whatsapp web websocket")
    wait_for(lambda: "(attempt 2)" in session_status(client, account, session_id)["statusReason"], 10)


def test_restore_on_start_reconnects_a_paired_store_without_a_qr(app, make_account):
    from extensions import db
    from models import SessionStatus, WaSession
    from roles.runtime import EmbeddedRuntime

    account = make_account()
    with app.app_context():
        session = WaSession(
            user_id=account.user_id,
            name="Shop",
            status=SessionStatus.CONNECTED,
            phone=PHONE,
            paired=True,
            wanted_online=True,
        )
        db.session.add(session)
        db.session.commit()
        session_id = session.id
    store = Path(app.config["DATA_DIR"]) / "engines" / "neonize" / f"{session_id}.db"
    store_with_device(store)

    runtime = EmbeddedRuntime(app)  # the engine host starting after a restart
    runtime.start()
    try:
        engine = runtime.engine_host.engine
        assert engine.active_sessions() == [session_id]  # taken up again with no request

        def restored():
            with app.app_context():
                return db.session.get(WaSession, session_id).status == SessionStatus.ERROR

        wait_for(restored, 15)
        with app.app_context():
            session = db.session.get(WaSession, session_id)
            assert "Cannot reach WhatsApp" in session.status_reason
            assert session.qr_code is None and session.paired and session.phone == PHONE
        assert engine.is_paired(session_id) and engine.stores.phone(session_id) == PHONE
    finally:
        runtime.stop()


# -- which processes load neonize ----------------------------------------------------------------

PROCESS_ROLES = """
import sys
from app import create_app
app = create_app({"DATA_DIR": sys.argv[1], "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1] + "/t.db"})
import wsgi, cli, jobs.bulk, jobs.stats, jobs.engine, jobs.webhooks, roles.runtime  # web, worker and job code
assert app.config["WA_ENGINE"] == "neonize"
assert app.test_client().get("/healthz").status_code in (200, 503)
print("loaded" if "neonize" in sys.modules else "clean")
"""


def test_the_web_and_worker_processes_never_load_neonize(tmp_path):
    # The web module, loaded alone on purpose (no Redis or PostgreSQL here).
    environment = {**os.environ, "WA_ENGINE": "neonize", "DATA_DIR": str(tmp_path), "WAGATE_SINGLE_NODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PROCESS_ROLES, str(tmp_path)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "clean"


def test_a_reply_with_mentions_quotes_whatsapps_id_of_our_own_message(nz):
    nz.online()
    first = nz.engine.send_text("s1", "6281234567890", "Order 42 is ready", wa_id="3EB0OURS000000000000001")
    whatsapp_id = nz.engine.ledger.get("s1", first.wa_id).whatsapp_id
    reply = Outgoing(
        "text",
        text="@6281111111111 see above",
        quoted_wa_id=first.wa_id,
        quoted_from_me=True,
        quoted_text="Order 42 is ready",
        mentions=("6281111111111",),
    )
    nz.engine.send("s1", "6281234567890", reply, wa_id="3EB0OURS000000000000002")
    text = nz.go.sent[1].message.extendedTextMessage
    assert text.text == "@6281111111111 see above"
    assert text.contextInfo.stanzaID == whatsapp_id != first.wa_id  # WhatsApp's id, not ours
    assert text.contextInfo.participant == f"{PHONE}@s.whatsapp.net"
    assert text.contextInfo.quotedMessage.conversation == "Order 42 is ready"
    assert list(text.contextInfo.mentionedJID) == ["6281111111111@s.whatsapp.net"]


def test_a_reaction_to_our_message_and_a_view_once_image(nz):

    nz.online()
    first = nz.engine.send_text("s1", "6281234567890", "New stock!", wa_id="3EB0OURS000000000000003")
    whatsapp_id = nz.engine.ledger.get("s1", first.wa_id).whatsapp_id
    reaction = Outgoing("reaction", reaction=Reaction(message_wa_id=first.wa_id, from_me=True, emoji="🔥"))
    nz.engine.send("s1", "6281234567890", reaction, wa_id="3EB0OURS000000000000004")
    sent = nz.go.sent[1].message.reactionMessage
    assert (sent.key.ID, sent.key.fromMe, sent.key.remoteJID, sent.text) == (
        whatsapp_id,
        True,
        "6281234567890@s.whatsapp.net",
        "🔥",
    )

    image = Outgoing("image", media=png(), mimetype="image/png", view_once=True, text="Only once")
    nz.engine.send("s1", "6281234567890", image, wa_id="3EB0OURS000000000000005")
    sent = nz.go.sent[2].message.imageMessage
    assert (sent.viewOnce, sent.caption) == (True, "Only once")


def test_received_media_is_downloaded_and_a_reaction_names_its_message(nz):
    nz.online()
    data = png()
    nz.go.downloads["/v/t62/received"] = data
    photo = wa.Message(
        imageMessage=wa.ImageMessage(caption="Receipt", mimetype="image/png", directPath="/v/t62/received")
    )
    nz.go.emit("s1", message_event(photo, sender=user("6281234567890")))
    event = nz.next(EngineEventKind.MESSAGE).data
    assert (event["type"], event["media"], event["mimetype"]) == ("image", data, "image/png")

    liked = wa.Message(
        reactionMessage=wa.ReactionMessage(key=wa_common.MessageKey(ID="3EB0THEIRS", fromMe=True), text="👍")
    )
    nz.go.emit("s1", message_event(liked, sender=user("6281234567890")))
    assert nz.next(EngineEventKind.MESSAGE).data["reaction"] == {"messageWaId": "3EB0THEIRS", "emoji": "👍"}


def test_groups_are_read_from_whatsapp_and_a_group_is_sent_to_without_a_number_check(nz):
    nz.online()
    nz.go.groups = [
        go.GroupInfo(
            JID=go.JID(User="120363025246125888", Server="g.us"),
            OwnerJID=go.JID(User=PHONE, Server="s.whatsapp.net"),
            GroupName=go.GroupName(Name="Wholesale"),
            GroupTopic=go.GroupTopic(Topic="Prices every Monday"),
            GroupCreated=1_700_000_000,
            Participants=[
                go.GroupParticipant(JID=go.JID(User=PHONE, Server="s.whatsapp.net"), IsSuperAdmin=True),
                go.GroupParticipant(
                    JID=go.JID(User="123", Server="lid"),
                    PhoneNumber=go.JID(User="6285555555555", Server="s.whatsapp.net"),
                ),
            ],
        )
    ]
    [group] = nz.engine.groups_list("s1")
    assert group == {
        "id": "120363025246125888@g.us",
        "name": "Wholesale",
        "topic": "Prices every Monday",
        "owner": PHONE,
        "createdAt": "2023-11-14T22:13:20+00:00",
        "participants": [
            {"phone": PHONE, "role": "superadmin"},
            {"phone": "6285555555555", "role": "member", "lid": "123@lid"},
        ],
    }
    nz.engine.send_text("s1", "120363025246125888@g.us", "New prices", wa_id="3EB0GROUP0000000000000")
    assert (nz.go.sent[0].to.User, nz.go.sent[0].to.Server) == ("120363025246125888", "g.us")
    assert nz.go.checked == []


def test_the_address_book_is_read_once_logged_in(nz):
    nz.go.contacts = [
        go.Contact(JID=go.JID(User="6285555555555", Server="s.whatsapp.net"), Info=go.ContactInfo(FullName="Asha")),
        go.Contact(JID=go.JID(User="120363025246125888", Server="g.us"), Info=go.ContactInfo(FullName="A group")),
    ]
    nz.online()
    contacts = nz.next(EngineEventKind.CONTACTS).data["contacts"]
    assert contacts == [{"phone": "6285555555555", "name": "Asha"}]


def test_presence_is_shown_in_chats_and_to_everyone(nz):
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia

    nz.online()
    nz.engine.presence_send("s1", "6281234567890", "typing")
    nz.engine.presence_send("s1", "120363025246125888@g.us", "recording")
    nz.engine.presence_send("s1", "6281234567890", "paused")
    nz.engine.presence_send("s1", None, "unavailable")
    shown = [(jid and (jid.User, jid.Server), state, media) for jid, state, media in nz.go.presences]
    assert shown == [
        (("6281234567890", "s.whatsapp.net"), ChatPresence.CHAT_PRESENCE_COMPOSING.value, 0),
        (("120363025246125888", "g.us"), 0, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO.value),
        (("6281234567890", "s.whatsapp.net"), ChatPresence.CHAT_PRESENCE_PAUSED.value, 0),
        (None, b"unavailable", None),
    ]
    nz.engine.presence_subscribe("s1", "6281234567890")
    assert [(jid.User, jid.Server) for jid in nz.go.subscribed] == [("6281234567890", "s.whatsapp.net")]


def test_presence_reaches_go_only_for_a_logged_in_session(nz):
    nz.engine.session_start("s1")
    nz.go.connection("s1")
    with pytest.raises(EngineError) as refused:
        nz.engine.presence_send("s1", "6281234567890", "typing")
    assert refused.value.code == "SESSION_NOT_CONNECTED"
    assert nz.go.presences == []


def test_contacts_presence_and_typing_become_presence_events(nz):
    nz.online()
    nz.go.lid_map["777"] = "6289999999999"
    nz.go.emit("s1", go.Presence(From=user("6281234567890"), Unavailable=False))
    assert nz.next(EngineEventKind.PRESENCE).data == {"from": "6281234567890", "state": "online"}
    nz.go.emit("s1", go.Presence(From=go.JID(User="777", Server="lid"), Unavailable=True, LastSeen=1_700_000_000))
    gone = nz.next(EngineEventKind.PRESENCE).data
    assert (gone["from"], gone["state"], gone["lastSeen"].timestamp()) == ("6289999999999", "offline", 1_700_000_000)
    assert gone["lid"] == "777@lid"

    group = go.JID(User="120363025246125888", Server="g.us")
    for state, media, chat, seen in (
        (go.ChatPresence.COMPOSING, go.ChatPresence.TEXT, None, "typing"),
        (go.ChatPresence.COMPOSING, go.ChatPresence.AUDIO, group, "recording"),
        (go.ChatPresence.PAUSED, go.ChatPresence.TEXT, None, "paused"),
    ):
        source = go.MessageSource(
            Chat=chat or user("6281234567890"), Sender=user("6281234567890"), IsGroup=chat is not None
        )
        nz.go.emit("s1", go.ChatPresence(MessageSource=source, State=state, Media=media))
        expected = {"from": "6281234567890", "state": seen} | ({"chat": "120363025246125888@g.us"} if chat else {})
        assert nz.next(EngineEventKind.PRESENCE).data == expected


def test_a_poll_vote_is_decrypted_and_names_our_poll(nz):
    import hashlib

    nz.online()
    poll = Outgoing("poll", poll=Poll("Which colour?", ("Red", "Green"), False))
    nz.engine.send("s1", "6281234567890", poll, wa_id="3EB0OURPOLL00000000001")
    theirs = "3EB0" + "1".zfill(18)
    red = hashlib.sha256(b"Red").digest()
    nz.go.votes["3A0123456789ABCDEF"] = [red]
    update = wa.Message(
        pollUpdateMessage=wa.PollUpdateMessage(
            pollCreationMessageKey=wa_common.MessageKey(ID=theirs, fromMe=True),
            vote=wa.PollEncValue(encPayload=b"x", encIV=b"y"),
        )
    )
    nz.go.emit("s1", message_event(update, sender=user("6281234567890")))
    data = nz.next(EngineEventKind.MESSAGE).data
    assert data["type"] == "poll_vote"
    assert data["pollVote"] == {"messageWaId": "3EB0OURPOLL00000000001", "optionHashes": [red.hex()]}

    nz.go.votes.clear()  # a vote that cannot be decrypted changes nothing
    nz.go.emit("s1", message_event(update, sender=user("6281234567890")))
    assert [event for event in nz.quiet(0.3) if event.kind == EngineEventKind.MESSAGE] == []


def test_a_contacts_poll_arrives_with_its_options(nz):
    nz.online()
    options = [wa.PollCreationMessage.Option(optionName=name) for name in ("Pickup", "Delivery")]
    poll = wa.Message(
        pollCreationMessageV3=wa.PollCreationMessage(name="How?", options=options, selectableOptionsCount=1)
    )
    nz.go.emit("s1", message_event(poll, sender=user("6281234567890")))
    data = nz.next(EngineEventKind.MESSAGE).data
    assert data["poll"] == {"question": "How?", "options": ["Pickup", "Delivery"], "multiple_answers": False}


def test_inbound_messages_name_the_sender_by_number_and_lid(nz):
    nz.online()
    lid = go.JID(User="123456789012345", Server="lid", Device=2)
    nz.go.emit("s1", message_event(wa.Message(conversation="pn"), sender=user("6281111111111"), SenderAlt=lid))
    by_number = nz.next(EngineEventKind.MESSAGE).data
    assert (by_number["sender"], by_number["phone"], by_number["lid"]) == (
        "6281111111111",
        "6281111111111",
        "123456789012345@lid",
    )
    nz.go.emit("s1", message_event(wa.Message(conversation="lid"), sender=lid, SenderAlt=user("6281111111111")))
    by_lid = nz.next(EngineEventKind.MESSAGE).data
    assert (by_lid["sender"], by_lid["phone"], by_lid["lid"]) == (
        "6281111111111",
        "6281111111111",
        "123456789012345@lid",
    )
    nz.go.emit("s1", message_event(wa.Message(conversation="hidden"), sender=lid))
    hidden = nz.next(EngineEventKind.MESSAGE).data
    assert (hidden["sender"], hidden["lid"], "phone" in hidden) == ("123456789012345", "123456789012345@lid", False)


def test_a_history_sync_becomes_history_batches_per_chat(nz):
    from neonize.proto.waHistorySync import WAWebProtobufsHistorySync_pb2 as history
    from neonize.proto.waWeb import WAWebProtobufsWeb_pb2 as web

    def entry(chat: str, wa_id: str, text: str, at: int, *, from_me=False, participant="") -> history.HistorySyncMsg:
        key = wa_common.MessageKey(remoteJID=chat, fromMe=from_me, ID=wa_id, participant=participant or None)
        info = web.WebMessageInfo(key=key, message=wa.Message(conversation=text), messageTimestamp=at, pushName="Ana")
        return history.HistorySyncMsg(message=info)

    person, group = "6281234567890@s.whatsapp.net", "120363000000000000@g.us"
    sync = history.HistorySync(
        syncType=history.HistorySync.ON_DEMAND,
        conversations=[
            history.Conversation(
                ID=person,
                messages=[
                    entry(person, "H2", "later", 1_700_000_100),
                    entry(person, "H1", "mine", 1_700_000_000, from_me=True),
                ],
            ),
            history.Conversation(
                ID=group, messages=[entry(group, "G1", "hi all", 1_700_000_050, participant="777@lid")]
            ),
            history.Conversation(ID="status@broadcast", messages=[entry("status@broadcast", "S1", "story", 1)]),
        ],
        phoneNumberToLidMappings=[
            history.PhoneNumberToLIDMapping(pnJID="6289999999999@s.whatsapp.net", lidJID="777@lid")
        ],
    )
    nz.online()
    nz.go.emit("s1", go.HistorySync(Data=sync))
    first, second = nz.next(EngineEventKind.HISTORY).data, nz.next(EngineEventKind.HISTORY).data
    assert (first["chat"], first["requestId"], first["final"], first["received"]) == ("6281234567890", None, True, 2)
    assert [(m["waId"], m["text"], m["sender"], m.get("fromMe", False)) for m in first["messages"]] == [
        ("H1", "mine", "6281234567890", True),
        ("H2", "later", "6281234567890", False),
    ]
    assert first["messages"][0]["timestamp"].timestamp() == 1_700_000_000
    [said] = second["messages"]
    assert second["chat"] == group
    assert (said["sender"], said["phone"], said["lid"], said["details"]["chat"]) == (
        "6289999999999",
        "6289999999999",
        "777@lid",
        group,
    )
    with pytest.raises(EngineError) as refused:
        nz.engine.history_request("s1", "6281234567890", request_id="hist_1", count=50)
    assert refused.value.code == "REJECTED"
