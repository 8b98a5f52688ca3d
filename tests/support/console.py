"""What the console's browser modules (tests/system/console/) share: the password their users
log in with, the library seeded by the API, the served app's deliveries written now, waits on
pictures and on the focus, and fresh pictures no other test stored."""

from __future__ import annotations

import contextlib
import io
import math
import mimetypes
import os
import uuid

import pytest

from avenue.media.wiring import Route
from tests.helpers import IMAGES
from tests.support.browser import SETUP_MS

PASSWORD = "correct horse battery"


def database(live):
    return live.extensions["avenue.mongo"].db


def flush_deliveries(live) -> None:
    """Write what the served app has served and not written yet, now (the wiring door's
    ``Route.flush_deliveries``, as a worker's exit does)."""
    Route.flush_deliveries(live)


def loaded_pictures(page, selector: str) -> list[dict]:
    """What each ``<img>`` under ``selector`` shows once loaded: its URL and how wide it is drawn."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(img => img.complete && img.naturalWidth > 0)",
        arg=selector)
    return page.eval_on_selector_all(
        selector, "imgs => imgs.map(i => ({src: i.currentSrc, drawn: i.getBoundingClientRect().width}))")


def look_alikes_asked(page, request) -> list[str]:
    """The GETs the page sends for an image's look-alikes (after a late lookup), as they go."""
    asked: list[str] = []
    if request.node.callspec.params["lookup"] == "late":
        request.getfixturevalue("late_lookups")
        page.on("request", lambda sent: asked.append(sent.url) if sent.method == "GET" and (
            sent.url.endswith("/near-duplicates") or "/api/builder/media/" in sent.url) else None)
    else:
        request.getfixturevalue("answers_wait_for_lookups")
    return asked


def seed_library(page, folder: str, names: list[str]) -> dict[str, str]:
    """Upload ``names`` (fixtures) into the library's ``folder`` by the API; id by filename."""
    csrf = page.request.get("/api/auth/csrf", timeout=SETUP_MS).json()["csrf_token"]
    ids = {}
    for name in names:
        photo = {"name": name, "mimeType": mimetypes.guess_type(name)[0] or "image/png",
                 "buffer": (IMAGES / "good" / name).read_bytes()}
        answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf},
                                   multipart={"file": photo, "folder": folder}, timeout=SETUP_MS)
        assert answer.ok, answer.text()
        ids[name] = answer.json()["id"]
    return ids


def focused_name(page) -> str:
    """The focused element's name: its aria-label, its label's text (a box) or its own text."""
    return page.evaluate("""() => { const e = document.activeElement;
        return e ? (e.getAttribute('aria-label') || e.labels?.[0]?.textContent.trim() || e.textContent.trim())
            : ''; }""")


def chooser_by_key(page, key: str = "Space", *, tries: int = 3):
    """The file chooser ``key`` opens on the focused file input. Chromium on a loaded machine once
    let a Space go without opening it (a full run waited 30 s in vain): the key is pressed again,
    the focus checked still on the input each time, rather than waited for longer."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    def press():
        assert page.evaluate("document.activeElement.type") == "file", focused_name(page)
        with page.expect_file_chooser(timeout=10_000) as chooser:
            page.keyboard.press(key)
        return chooser.value

    for _ in range(tries - 1):
        with contextlib.suppress(PlaywrightTimeout):
            return press()
    return press()


def tab_to(page, name: str, *, back: bool = False, limit: int = 40) -> None:
    """Press Tab (Shift+Tab with ``back``) until the focused element's name starts with ``name``."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if focused_name(page).startswith(name):
            return
    pytest.fail(f"Tab never reached {name!r} (last: {focused_name(page)!r})")


def confirm(page, yes: str, *, by_keyboard: bool = False) -> str:
    """Answer yes to the console's confirmation (js/confirm.js), once the click or key just
    given opened it: its ``yes`` button pressed (``by_keyboard``: the focus checked on its safe
    answer first, then Tab and Enter, as a keyboard user answers). Its question, returned."""
    dialog = page.locator("#confirm-dialog[open]")
    dialog.wait_for()
    question = dialog.locator("#confirm-title").inner_text()
    if by_keyboard:
        assert focused_name(page) == "Cancel", focused_name(page)  # Enter alone never deletes
        tab_to(page, yes, limit=3)
        page.keyboard.press("Enter")
    else:
        dialog.get_by_role("button", name=yes, exact=True).click()
    dialog.wait_for(state="hidden")
    return question


def fresh_jpeg(width: int = 1024, height: int = 768) -> bytes:
    """A JPEG no other test uploaded (identical bytes would be the same stored image): bands
    of colour from a random seed, so a crop or a turn changes what the picture shows."""
    from PIL import Image, ImageDraw

    seed = uuid.uuid4().bytes
    picture = Image.new("RGB", (width, height), tuple(seed[:3]))
    draw = ImageDraw.Draw(picture)
    for band in range(8):
        box = (band * width // 8, 0, (band + 1) * width // 8, height // 2)
        draw.rectangle(box, fill=tuple(seed[band:band + 3]))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def seed_exact_twins(page, size: tuple[int, int]) -> tuple[int, list[str]]:
    """Two library images of the same pixels in other bytes (a PNG, and the same PNG saved again
    with a comment): an exact-duplicate group of two, posted through the page's API session. The
    seed their names carry (``twin-<seed>-0.png``, ``-1``) and their ids."""
    from PIL import PngImagePlugin

    from tests.support.fixtures import scene

    csrf = page.request.get("/api/auth/csrf", timeout=SETUP_MS).json()["csrf_token"]
    seed = uuid.uuid4().int % 100_000
    ids: list[str] = []
    for note in ("", "saved again"):  # other bytes, the same pixels
        info = PngImagePlugin.PngInfo()
        if note:
            info.add_text("Comment", note)
        out = io.BytesIO()
        scene(size, seed).save(out, "PNG", pnginfo=info)
        file = {"name": f"twin-{seed}-{len(ids)}.png", "mimeType": "image/png", "buffer": out.getvalue()}
        answer = page.request.post("/api/builder/media", headers={"X-CSRF-Token": csrf},
                                   multipart={"file": file}, timeout=SETUP_MS)
        assert answer.ok, answer.text()
        ids.append(answer.json()["id"])
    return seed, ids


def unlike_jpeg(width: int, height: int) -> bytes:
    """A JPEG of random blocks (8 x 6): bytes no other test stores, and a picture like no other
    (its perceptual hash is random). Most browser tests are not about look-alikes, and
    fresh_jpeg's bands of colour are alike: one pair in six shares a band of its hash (a
    lookup key) and one in twenty is near-duplicates, so each upload of a grid of them found
    and relabelled a growing group (50 uploads: 1,550-1,740 database commands, against 1,200
    for these)."""
    from PIL import Image

    cells = Image.frombytes("RGB", (8, 6), os.urandom(8 * 6 * 3))
    out = io.BytesIO()
    cells.resize((width, height), Image.Resampling.NEAREST).save(out, "JPEG", quality=85)
    return out.getvalue()


def open_panel(page, media_id: str):
    """Click the library tile of ``media_id``: its details panel, once it shows that image."""
    tile = page.locator(f"#media-grid li[data-id='{media_id}']")
    filename = tile.get_attribute("data-filename")
    tile.click()
    panel = page.locator("#media-panel")
    panel.locator(".panel-title", has_text=filename).wait_for()
    return panel


def percent(fraction: float) -> int:
    """``fraction`` in whole percent as the console rounds it (JavaScript's Math.round: halves
    up, where Python's round() takes 12.5 to 12)."""
    return math.floor(fraction * 100 + 0.5)
