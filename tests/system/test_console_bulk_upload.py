"""The console's bulk upload in a real browser (headless Chromium, Playwright): a folder of mixed
files through the library's queue, a file the server answers 503 once, progress, the summary,
screenshots at 1280 and 360 px and the axe audit with the queue showing.

The app is served by werkzeug on loopback over the session's SecantusDB, behind a small WSGI
layer that answers the first try of any file named ``retry-*.jpg`` with 503 and Retry-After
(as a busy server would), then lets it through."""

from __future__ import annotations

import functools
import io
import re
import shutil
import threading
import time
import uuid

import pymongo
import pytest

from avenue.embedded import free_port
from tests.helpers import IMAGES, make_app
from tests.support.browser import axe_violations, shot, user_pages

# One xdist worker runs the whole module (make test's --dist loadgroup): its Chromium and its
# served app are module fixtures, started once rather than on every worker its tests reach.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console_bulk_upload")]

PASSWORD = "correct horse battery"
MAX_UPLOAD = 1_000_000  # photo_12mp.jpg (1.2 MB) is over it: a 413


class BusyOnce:
    """WSGI layer: the first POST carrying a file named retry-*.jpg gets 503 with Retry-After: 1
    (the body read and dropped, as a proxy in front of a busy worker answers); later tries pass.
    A file named slow-* waits 1.5 s before the app sees it."""

    def __init__(self, app) -> None:
        self.app = app
        self.refused: list[str] = []
        self.active = 0
        self.lock = threading.Lock()

    def idle(self, timeout: float = 30) -> None:
        """Wait until no request is being answered (a closed page's thumbnails are still
        rendered by the server's threads): the database is dropped after."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.05)

    def __call__(self, environ, start_response):
        from werkzeug.wsgi import ClosingIterator

        with self.lock:
            self.active += 1

        def done() -> None:
            with self.lock:
                self.active -= 1

        try:
            return ClosingIterator(self.answer(environ, start_response), done)
        except BaseException:
            done()
            raise

    def answer(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if re.search(rb'filename="slow-', body[:4096]):
                time.sleep(1.5)  # long enough for the test to press Cancel while it is in flight
            found = re.search(rb'filename="(?:[^"/]*/)*(retry-[^"/]*)"', body[:4096])
            if found:
                name = found.group(1).decode()
                with self.lock:
                    first = name not in self.refused
                    if first:
                        self.refused.append(name)
                if first:
                    start_response("503 Service Unavailable", [("Content-Type", "application/json"),
                                                               ("Retry-After", "1")])
                    return [b'{"error": {"code": "busy", "message": "Busy, try again shortly."}}']
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def live(secantus):
    from werkzeug.serving import make_server

    db_name = f"avenue_test_{uuid.uuid4().hex[:12]}"
    app = make_app((pymongo.MongoClient, secantus.uri), db_name, AVENUE_HISTORY_INTERVAL_SECONDS=0,
                   AVENUE_MAX_UPLOAD_BYTES=MAX_UPLOAD)
    busy = BusyOnce(app.wsgi_app)
    app.wsgi_app = busy
    app.busy = busy
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    busy.idle()
    client = app.extensions["avenue.mongo"].client
    client.drop_database(db_name)
    client.close()


@pytest.fixture
def editor_page(live, browser):
    """``editor_page(width)``: a page logged in as a new editor, at that width."""
    with user_pages(browser, live, PASSWORD) as page_as:
        yield functools.partial(page_as, "editor")


def mixed_folder(root, tag: str):
    """A shop's folder as it comes off a camera card: photos (one in a subfolder, one that the
    server will be busy for), a text file, a corrupt PNG, a truncated JPEG and a photo over the
    upload limit."""
    folder = root / f"shoot-{tag}"
    (folder / "details").mkdir(parents=True)
    photos = {"progressive.jpg": "progressive.jpg", "grayscale.jpg": "grayscale.jpg",
              "details/alpha.png": "alpha.png", f"retry-{tag}.jpg": "photo_exif_rotated.jpg"}
    for name, source in photos.items():
        shutil.copy(IMAGES / "good" / source, folder / name)
    (folder / "notes.txt").write_text("shot list: chairs, tables\n")
    shutil.copy(IMAGES / "bad" / "corrupt_chunk.png", folder / "broken.png")
    shutil.copy(IMAGES / "bad" / "truncated.jpg", folder / "cut.jpg")
    # Over the endpoint's limit (the upload limit and 64 KiB of form) whatever the corpus: the
    # made corpus's photo_12mp.jpg is 1.04 MB, under it; bytes after the JPEG's end pad it.
    photo = (IMAGES / "good" / "photo_12mp.jpg").read_bytes()
    (folder / "huge.jpg").write_bytes(photo + bytes(max(0, MAX_UPLOAD + 200_000 - len(photo))))
    return folder


def api_refusal(page, name: str, source) -> dict:
    """What the API itself answers to a single upload of ``source`` (the reason the queue shows)."""
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf}, multipart={
        "file": {"name": name, "mimeType": "image/jpeg", "buffer": source.read_bytes()}})
    assert 400 <= answer.status < 500, answer.status
    return answer.json()["error"]


def test_a_folder_of_mixed_files_is_stored_retried_and_summed_up(live, editor_page, tmp_path):
    tag = uuid.uuid4().hex[:6]
    folder = mixed_folder(tmp_path, tag)
    page = editor_page(1280, audit=True)
    page.goto("/console/library")
    page.get_by_label("Or a whole folder").set_input_files(str(folder))
    page.get_by_label("Folder (optional)").fill(f"/shoots/{tag}")
    page.get_by_role("button", name="Upload", exact=True).click()

    summary = page.get_by_role("status").filter(has_text="Done:")
    summary.wait_for(timeout=60_000)
    assert summary.inner_text() == ("Done: 4 stored, 3 refused, 1 skipped (not images) of 8 file(s).")
    # The busy answer was retried after its Retry-After, and that file was stored.
    assert live.busy.refused == [f"retry-{tag}.jpg"]
    retried = page.locator("#upload-list li", has_text=f"retry-{tag}.jpg")
    assert retried.locator(".upload-status").inner_text() == "uploaded"
    # Progress: every sent file's bar and the overall bar reached 100 %.
    assert page.get_by_label("Overall progress").get_attribute("value") == "100"
    for name in ("progressive.jpg", "grayscale.jpg", "details/alpha.png", f"retry-{tag}.jpg"):
        assert page.get_by_label(f"Uploading shoot-{tag}/{name}").get_attribute("value") == "100"
    # Each refusal named, with the API's own reason and code; the text file skipped unsent.
    problems = page.get_by_role("list", name="Files not stored").get_by_role("listitem").all_inner_texts()
    reasons = {name: api_refusal(page, name, folder / name) for name in ("broken.png", "cut.jpg")}
    assert sorted(problems) == sorted(
        [f"shoot-{tag}/{name}: refused: {error['message']} ({error['code']})"
         for name, error in reasons.items()]
        + [f"shoot-{tag}/notes.txt: skipped: Not an image (text/plain); not sent.",
           next(line for line in problems if line.startswith(f"shoot-{tag}/huge.jpg: "))])
    assert {error["code"] for error in reasons.values()} == {"corrupt_image"}
    too_large = api_refusal(page, "huge.jpg", folder / "huge.jpg")  # its body counts the name: no exact match
    huge = next(line for line in problems if line.startswith(f"shoot-{tag}/huge.jpg: "))
    assert huge.startswith(f"shoot-{tag}/huge.jpg: refused: {too_large['message'].split(' is ')[0]} is ")
    assert huge.endswith(f"this endpoint takes at most {MAX_UPLOAD + 65536:,}. ({too_large['code']})")
    # Stored in the library, in the folder the form named; nothing of the refused ones.
    listed = page.request.get(f"/api/builder/media?folder=/shoots/{tag}").json()
    assert sorted(item["filename"] for item in listed["items"]) == sorted(
        ["progressive.jpg", "grayscale.jpg", "alpha.png", f"retry-{tag}.jpg"])
    assert page.get_by_role("button", name="Retry failed").is_hidden()
    shot(page, "bulk-upload-1280")
    assert axe_violations(page) == []


def test_the_queue_fits_a_phone_and_passes_the_audit(live, editor_page, tmp_path):
    tag = uuid.uuid4().hex[:6]
    folder = mixed_folder(tmp_path, tag)
    page = editor_page(360, audit=True)
    page.goto("/console/uploads")
    page.get_by_role("button", name="Add images…").click()  # folded on a phone
    page.get_by_label("Or a whole folder").set_input_files(str(folder))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("status").filter(has_text="Done:").wait_for(timeout=60_000)
    assert page.get_by_role("status").filter(has_text="Done:").inner_text() == (
        "Done: 4 stored, 3 refused, 1 skipped (not images) of 8 file(s).")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the uploads screen is {width} px wide"
    shot(page, "bulk-upload-360")
    assert axe_violations(page) == []


def test_files_dropped_on_the_box_are_queued_and_a_non_image_is_skipped(live, editor_page):
    """A drop of files (a synthetic one: Chromium gives a script-made DataTransfer no folder
    entries, so a dropped folder's walk is not exercised here, only the choose-a-folder input)."""
    page = editor_page(1280)
    page.goto("/console/uploads")
    page.evaluate("""async () => {
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 64;
        const draw = canvas.getContext('2d');
        draw.fillStyle = '#c03';
        draw.fillRect(8, 8, 40, 30);
        const png = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const dropped = new DataTransfer();
        dropped.items.add(new File([png], 'dropped.png', {type: 'image/png'}));
        dropped.items.add(new File(['a note'], 'readme.txt', {type: 'text/plain'}));
        const zone = document.getElementById('dropzone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: dropped, bubbles: true, cancelable: true}));
        }
    }""")
    summary = page.get_by_role("status").filter(has_text="Done:")
    summary.wait_for(timeout=60_000)
    assert summary.inner_text() == "Done: 1 stored, 1 skipped (not images) of 2 file(s)."
    page.locator("#uploads .media-card", has_text="dropped.png").wait_for()


def test_cancel_stops_the_queue_and_retry_failed_finishes_it(live, editor_page, tmp_path):
    """Cancel aborts what is in flight and sends nothing more; Retry failed sends the cancelled
    files again. A file whose body had reached the server before the cancel may have been stored
    whole: its second send is then "already there" (dedupe), never a second copy."""
    from tests.support.fixtures import scene

    names = [f"slow-{n}-{uuid.uuid4().hex[:4]}.jpg" for n in range(5)]
    for n, name in enumerate(names):  # pictures of their own: none is already in the library
        scene((480, 360), uuid.uuid4().int % 10_000 + n).save(tmp_path / name, "JPEG", quality=85)
    page = editor_page(1280)
    page.goto("/console/library")
    page.get_by_label("Image", exact=True).set_input_files([str(tmp_path / name) for name in names])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("button", name="Cancel uploads").click()
    summary = page.get_by_role("status").filter(has_text="Done:")
    summary.wait_for(timeout=60_000)
    assert "5 cancelled of 5 file(s)." in summary.inner_text()
    assert page.locator("#upload-list .upload-status", has_text="cancelled").count() == 5
    page.get_by_role("button", name="Retry failed").click()
    finished = page.get_by_role("status").filter(has_text=re.compile(r"^Done: (?!.*cancelled)"))
    finished.wait_for(timeout=60_000)
    counts = finished.inner_text()
    statuses = page.locator("#upload-list .upload-status").all_inner_texts()
    assert all(status.startswith("uploaded") for status in statuses), statuses
    assert "cancelled" not in counts and "failed" not in counts, counts
    listed = page.request.get("/api/builder/media?per_page=100").json()["items"]
    assert sorted(item["filename"] for item in listed if item["filename"] in names) == sorted(names)
    assert page.get_by_role("button", name="Retry failed").is_hidden()


def test_a_session_that_ended_sends_the_editor_back_to_log_in(live, editor_page):
    """The queue's 401 goes to the login form at once (bulk-upload.js), as any API call's does
    (the list's reload after the run would get there too, after every file had been refused)."""
    page = editor_page(1280)
    page.goto("/console/library")
    csrf = page.request.get("/api/auth/csrf").json()["csrf_token"]
    page.get_by_label("Image", exact=True).set_input_files(str(IMAGES / "good" / "grayscale.jpg"))
    assert page.request.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).ok  # elsewhere
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/console/login?next=%2Fconsole%2Flibrary")
