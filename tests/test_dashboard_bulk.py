"""The dashboard's bulk send: compose, preview, send, and watch a batch finish."""

import io
import re
from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from tests.dashboard import DashboardUser
from tests.helpers import wait_for

NUMBERS = ["919876543210", "919876543211"]


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, in document order."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str | None = None, **wanted) -> list[dict]:
        wanted = {name.replace("_", "-"): value for name, value in wanted.items()}
        return [
            attrs
            for name, attrs in self.tags
            if tag in (None, name) and all(attrs.get(k) == v for k, v in wanted.items())
        ]

    def one(self, tag: str | None = None, **wanted) -> dict:
        found = self.all(tag, **wanted)
        assert len(found) == 1, f"expected one element with {wanted}, found {len(found)}"
        return found[0]


class Browser(DashboardUser):
    """A logged-in dashboard user, sending requests the way the bulk pages' htmx does."""

    def preview(self, session_id: str, numbers: str = "", message: str = "Hello from the shop", file=None, delay=0):
        data = {"session_id": session_id, "numbers": numbers, "message": message, "delay": str(delay)}
        if file is not None:
            data["file"] = file
        return self.htmx("POST", "/bulk/preview", data=data, content_type="multipart/form-data")

    def send(self, preview_html: str):
        """Press "Send to N numbers": post the preview's hidden fields."""
        fields = {
            attrs["name"]: attrs.get("value", "")
            for attrs in _Tags(preview_html).all(type="hidden")
            if attrs["name"] in {"session_id", "contacts", "message", "delay"}
        }
        return self.htmx("POST", "/bulk", data=fields)

    def send_batch(self, session_id: str, numbers: list[str], message: str = "Hello from the shop") -> str:
        preview = self.preview(session_id, "\n".join(numbers), message)
        response = self.send(preview.get_data(as_text=True))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.headers["HX-Redirect"]

    def wait_finished(self, batch_url: str) -> str:
        """Poll the progress panel like htmx does until the server says stop (286)."""
        response = wait_for(
            lambda: (r := self.htmx("GET", f"{batch_url}/progress")).status_code == 286 and r,
            timeout=20,
            message="the batch to finish",
        )
        return response.get_data(as_text=True)


def _big_upload(data: dict, content: bytes) -> dict:
    """Request arguments for a multipart body with list.csv holding `content`, kept in memory.

    Werkzeug's test client spools bodies over 500 KB to a temporary file it never closes.
    """
    upload = FileStorage(io.BytesIO(content), filename="list.csv", content_type="text/csv")
    body, _, boundary = stream_encode_multipart({**data, "file": upload}, use_tempfile=False)
    return {"input_stream": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def _counts(html: str) -> tuple[int, int, int]:
    preview = _Tags(html).one(id="bulk-preview")
    return int(preview["data-valid"]), int(preview["data-invalid"]), int(preview["data-duplicates"])


@pytest.fixture
def browser(client, growth_session):
    return Browser(client, growth_session[0])


def test_free_plan_sees_why_there_is_no_bulk_send(client, account, shop):
    browser = Browser(client, account)
    page = client.get("/bulk").get_data(as_text=True)
    assert "Bulk send comes with the Growth plan" in page
    assert not _Tags(page).all(id="bulk-form")
    preview = browser.preview(shop, "\n".join(NUMBERS)).get_data(as_text=True)
    assert "Growth plan" in preview and not _Tags(preview).all(id="bulk-preview")


def test_the_form_offers_the_users_sessions_and_the_delay_floor(client, browser, growth_session):
    _, session_id = growth_session
    page = client.get("/bulk").get_data(as_text=True)
    option = _Tags(page).one("option", value=session_id)
    assert "selected" in option
    assert "Shop · connected, +" in page
    assert _Tags(page).one(name="delay")["value"] == "2000"
    assert _Tags(page).one(data_testid="no-batches")


def test_preview_counts_pasted_numbers(browser, growth_session):
    _, session_id = growth_session
    pasted = "919876543210\n+91 98765 43211, 12345;919876543210\n\n  not-a-number  \n"
    response = browser.preview(session_id, pasted)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _counts(html) == (2, 2, 1)
    assert "not-a-number" in html and "12345" in html
    assert "Send to 2 numbers" in html
    assert _Tags(html).one(name="contacts")["value"] == "919876543210\n919876543211"


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        (b"name,phone\nAsha,919876543210\nRavi,+91 98765 43211\nBad,abc\nAsha again,919876543210\n", (2, 1, 1)),
        (b"919876543210\n919876543211\n919876543212\n", (3, 0, 0)),
        (b"Number;Name\r\n919876543210;Asha\r\n919876543210;Asha\r\n", (1, 0, 1)),
        (b"\xef\xbb\xbfName,Mobile No\nAsha,919876543210\n", (1, 0, 0)),
        ("Nom,Téléphone\nZoë,919876543210\n".encode("cp1252"), (1, 0, 0)),
    ],
)
def test_preview_reads_an_uploaded_csv(browser, growth_session, csv, expected):
    _, session_id = growth_session
    response = browser.preview(session_id, file=(io.BytesIO(csv), "list.csv"))
    html = response.get_data(as_text=True)
    assert _counts(html) == expected
    # The box now holds the file's numbers, so previewing again needs no second upload.
    assert "919876543210" in html[html.index('id="numbers"') :]


@pytest.mark.parametrize(
    ("filename", "content", "error"),
    [
        ("list.xlsx", b"PK\x03\x04 a spreadsheet", "Choose a .csv file"),
        ("list.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a CSV text file"),
        ("list.csv", b"name,email\n", "holds no phone numbers"),
    ],
)
def test_preview_explains_a_file_it_cannot_read(browser, growth_session, filename, content, error):
    _, session_id = growth_session
    html = browser.preview(session_id, file=(io.BytesIO(content), filename)).get_data(as_text=True)
    assert error in html
    assert not _Tags(html).one(id="bulk-preview").get("data-valid")


def test_a_file_over_the_upload_limit_is_explained_beside_the_form(client, browser, growth_session):
    _, session_id = growth_session
    form = {"session_id": session_id, "message": "x", "csrf_token": browser.csrf}
    big = b"919876543210\n" * 90_000
    response = browser.htmx("POST", "/bulk/preview", **_big_upload(form, big))
    assert response.status_code == 200
    assert (response.headers["HX-Retarget"], response.headers["HX-Reswap"]) == ("#bulk-preview", "outerHTML")
    assert "limited to 1 MB" in response.get_data(as_text=True)
    # Without htmx the whole page comes back, with the same explanation.
    response = client.post("/bulk/preview", **_big_upload(form, big))
    html = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "limited to 1 MB" in html and _Tags(html).one(id="bulk-form")


@pytest.mark.parametrize("config_overrides", [{"MAX_CONTENT_LENGTH": 4 * 1024 * 1024}])
def test_a_file_over_1_mb_is_refused_even_when_uploads_may_be_larger(browser, growth_session):
    _, session_id = growth_session
    form = {"session_id": session_id, "message": "x", "delay": "0"}
    response = browser.htmx("POST", "/bulk/preview", **_big_upload(form, b"919876543210\n" * 90_000))
    assert "The file is over 1 MB" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "config_overrides", [{"PACE_MIN_GAP_SECONDS": 4.0, "PACE_JITTER_SECONDS": 3.0, "PACE_PER_MINUTE": 12}]
)
def test_the_preview_estimates_at_the_sessions_pace(browser, growth_session):
    """11 numbers at the default pace (a 4 s gap plus up to 3 s, 12 a minute): about a minute,
    not the 20 seconds a 2 s delay alone would give."""
    _, session_id = growth_session
    numbers = [f"9198765432{i:02d}" for i in range(11)]
    html = browser.preview(session_id, "\n".join(numbers), delay=2000).get_data(as_text=True)
    estimate = re.search(r'data-testid="bulk-estimate">([^<]*)<', html).group(1)
    assert estimate == "about 61 seconds"  # 11 x (4 + 3/2) s
    assert "one message every ~5.5 s" in html


def test_preview_needs_numbers_and_a_message(browser, growth_session):
    _, session_id = growth_session
    html = browser.preview(session_id, "\n".join(NUMBERS), message="").get_data(as_text=True)
    assert _Tags(html).one(id="message-error") and not _Tags(html).one(id="bulk-preview").get("data-valid")
    html = browser.preview(session_id, " ,; \n").get_data(as_text=True)
    assert "Paste some phone numbers, or choose a CSV file" in html


def test_sending_creates_a_batch_whose_progress_page_finishes(client, browser, growth_session):
    _, session_id = growth_session
    batch_url = browser.send_batch(session_id, NUMBERS)
    assert re.fullmatch(r"/bulk/[0-9a-f-]{36}", batch_url)
    page = client.get(batch_url)
    assert page.status_code == 200
    assert _Tags(page.get_data(as_text=True)).one(data_testid="bulk-progress")["data-total"] == "2"
    html = browser.wait_finished(batch_url)
    tags = _Tags(html)
    progress = tags.one(data_testid="bulk-progress")
    assert (progress["data-done"], progress["data-total"], progress["data-sent"]) == ("2", "2", "2")
    assert "finished" in html[html.index('data-testid="batch-status"') :][:80]
    # A finished panel no longer polls.
    assert "hx-trigger" not in tags.tags[0][1]
    assert [row["data-status"] for row in tags.all(data_testid="result-row")] == ["sent", "sent"]


@pytest.mark.parametrize("config_overrides", [{"PACE_MIN_GAP_SECONDS": 1.0}])
def test_a_finished_batch_says_so_and_its_messages_show_when_each_went(client, browser, growth_session):
    account, session_id = growth_session
    numbers = [*NUMBERS, "919876543212"]
    batch_url = browser.send_batch(session_id, numbers)
    browser.wait_finished(batch_url)
    # The first page drawn after sending is the batch's: finished, and nothing says it is still sending.
    page = client.get(batch_url).get_data(as_text=True)
    assert "finished" in page[page.index('data-testid="batch-status"') :][:80]
    assert "Sending to" not in page
    # The batch's messages were queued together and went a second apart: the log shows when each went.
    sent = client.get("/api/messages?direction=outbound", headers=account.headers).get_json()["messages"]
    went = {message["messageId"]: message["sentAt"][:19].replace("T", " ") for message in sent}
    assert len(set(went.values())) == len(numbers)
    shown = {}
    for match in re.finditer(
        r'<tr data-message-id="([^"]+)".*?<time datetime="[^"]*">([^<]+)</time>',
        client.get("/messages").get_data(as_text=True),
        re.DOTALL,
    ):
        shown[match[1]] = match[2]
    assert shown == went


def test_a_20_number_batch_ends_with_20_sent(client, browser, growth_session):
    account, session_id = growth_session
    numbers = [f"9198765432{i:02d}" for i in range(20)]
    batch_url = browser.send_batch(session_id, numbers)
    progress = _Tags(browser.wait_finished(batch_url)).one(data_testid="bulk-progress")
    assert (progress["data-sent"], progress["data-failed"], progress["data-total"]) == ("20", "0", "20")
    report = client.get(f"/api/whatsapp/bulk-send/{batch_url.rsplit('/', 1)[1]}", headers=account.headers)
    assert report.get_json()["sent"] == 20


def test_a_running_batch_polls_and_listens_for_its_events(client, browser, growth_session):
    _, session_id = growth_session
    preview = browser.preview(session_id, "\n".join(NUMBERS), delay=60_000).get_data(as_text=True)
    batch_url = browser.send(preview).headers["HX-Redirect"]
    batch_id = batch_url.rsplit("/", 1)[1]
    response = browser.htmx("GET", f"{batch_url}/progress")
    assert response.status_code == 200
    panel = _Tags(response.get_data(as_text=True)).tags[0][1]
    assert panel["hx-trigger"] == f"wa-batch-{batch_id} from:body throttle:1s, every 2s"
    assert "Should finish in about" in response.get_data(as_text=True)


def test_the_message_shows_as_text(client, browser, growth_session):
    _, session_id = growth_session
    batch_url = browser.send_batch(session_id, NUMBERS[:1], message="<b>Sale</b> & more")
    html = client.get(batch_url).get_data(as_text=True)
    assert "&lt;b&gt;Sale&lt;/b&gt; &amp; more" in html
    assert "<b>Sale</b>" not in html


def test_past_batches_are_listed_newest_first(client, browser, growth_session):
    _, session_id = growth_session
    first = browser.send_batch(session_id, NUMBERS[:1], message="First")
    browser.wait_finished(first)
    second = browser.send_batch(session_id, NUMBERS, message="Second")
    browser.wait_finished(second)
    rows = _Tags(client.get("/bulk").get_data(as_text=True)).all(data_testid="batch-row")
    assert [f"/bulk/{row['data-batch-id']}" for row in rows] == [second, first]


def test_a_disconnected_session_cannot_send(client, browser, growth_session):
    account, session_id = growth_session
    preview = browser.preview(session_id, "\n".join(NUMBERS)).get_data(as_text=True)
    client.post(f"/api/sessions/{session_id}/disconnect", headers=account.headers)
    wait_for(
        lambda: client.get(f"/api/sessions/{session_id}", headers=account.headers).get_json()["status"] != "connected",
        message="the session to disconnect",
    )
    assert "disabled" in _Tags(browser.preview(session_id, "\n".join(NUMBERS)).get_data(as_text=True)).one(
        data_testid="bulk-send"
    )
    response = browser.send(preview)
    assert "HX-Redirect" not in response.headers
    assert "connect it before sending" in response.get_data(as_text=True)
    assert not client.get("/bulk").get_data(as_text=True).count('data-testid="batch-row"')
