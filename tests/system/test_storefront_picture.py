"""The storefront recipe of docs/media.md tried in a real browser: the app under gunicorn,
photos uploaded through the API, a static page written from their image objects by the very
template the docs show (``tests/support/recipe.py`` reads it from the page), opened in
headless Chromium (Debian's, as the console's browser tests).

Screenshots go to tests/artifacts/storefront/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pymongo
import pytest

from tests.helpers import IMAGES
from tests.support.imageserver import ImageServer
from tests.support.launcher import Gunicorn, gunicorns
from tests.support.recipe import README, README_HEADING, recipe, render

# One xdist group (tests/support/xdist_groups.py), so that its server is started on one process.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("storefront_picture")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "storefront"
# The slot each picture fills on the page below: 400 CSS px on a wide screen.
SIZES = "(min-width: 800px) 400px, 100vw"
# What a browser without AVIF (and one without WebP either) sends for images: Chromium's own
# Accept, less what it cannot take.
ACCEPT_WITHOUT = {("avif",): "image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
                  ("avif", "webp"): "image/apng,image/svg+xml,image/*,*/*;q=0.8"}


def page_of(images: list[dict], template: str | None = None) -> str:
    """A storefront page: one recipe per image (docs/media.md's, or ``template``), each in a
    400 px wide box."""
    box = '<figure style="width: 400px; margin: 0 0 1rem">{}</figure>'
    pictures = "\n".join(box.format(render(image, SIZES, template)) for image in images)
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Storefront</title>"
            "<style>img { width: 100%; height: auto; display: block }</style></head>"
            f"<body>{pictures}</body></html>")


@pytest.fixture(scope="module")
def shop(secantus, tmp_path_factory):
    """The app under gunicorn, a public photo and a private one uploaded; (server, their image
    objects). One for the module: its tests only read them, each in a fresh browser context."""
    with gunicorns(secantus.uri, tmp_path_factory.mktemp("storefront")) as start:
        server = start(WEB_CONCURRENCY="1")
        editor = server.token("editor")
        public = server.uploaded((IMAGES / "good" / "progressive.jpg").read_bytes(), "lamp.jpg", editor)
        status, private = server.upload(editor, (IMAGES / "good" / "grayscale.jpg").read_bytes(), "chair.jpg",
                                        visibility="private")
        assert status == 201, private
        yield server, [public, private]


def open_storefront(browser, server, html: str, *, without: tuple[str, ...] = ()):
    """The page at the app's origin (served by the test, as a static file would be), after
    every picture on it has loaded; (page, the /media/ URLs the browser asked for)."""
    origin = f"http://127.0.0.1:{server.port}"
    context = browser.new_context(base_url=origin, viewport={"width": 1000, "height": 1200})
    context.set_default_timeout(60_000)  # first requests render their renditions
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/media/" in request.url else None)
    served = html
    for ext in without:  # the <source> elements of types this browser does not take
        served = re.sub(rf'<source type="image/{ext}"[^>]*>\s*', "", served)
    page.route(f"{origin}/storefront.html",
               lambda route: route.fulfill(status=200, content_type="text/html", body=served))
    if without:
        page.route(f"{origin}/media/**", lambda route: route.continue_(
            headers={**route.request.headers, "accept": ACCEPT_WITHOUT[without]}))
    page.goto("/storefront.html")
    page.wait_for_function("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
    return page, asked


def shown(page) -> list[dict]:
    """What each picture shows: the URL the browser chose."""
    return page.eval_on_selector_all("img", "imgs => imgs.map(i => ({src: i.currentSrc}))")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_docs_picture_loads_the_avif_rendition_that_fits_its_slot(shop, browser):
    server, images = shop
    page, asked = open_storefront(browser, server, page_of(images))
    try:
        pictures = shown(page)
        # 400 CSS px at 1x: the 480 step, as AVIF, for the public photo and the signed private one.
        assert [p["src"].split("?")[0].rsplit("/", 1)[1] for p in pictures] == ["w_480.avif", "w_480.avif"]
        assert "expires=" in pictures[1]["src"] and "sig=" in pictures[1]["src"]
        for picture, image in zip(pictures, images, strict=True):  # the API's URLs, HTML-escaped and back
            path = picture["src"].split(str(server.port), 1)[1]
            assert f"{path} 480w" in image["renditions"]["srcset"]["avif"]
        assert all(".avif" in url for url in asked), asked
        types = page.evaluate("""async urls => Promise.all(urls.map(async u =>
            (await fetch(u)).headers.get('content-type')))""", [p["src"] for p in pictures])
        assert types == ["image/avif", "image/avif"]
        shot(page, "avif")
    finally:
        page.context.close()


@pytest.mark.parametrize("without,loads", [(("avif",), "webp"), (("avif", "webp"), "jpg")])
def test_without_avif_the_webp_rendition_loads_and_without_webp_the_jpeg(shop, browser, without, loads):
    """Chromium picks a ``<source>`` by the types it can decode, and AVIF cannot be switched
    off in it; the HTML standard has a browser skip a source whose type it does not support,
    so a browser without AVIF sees the page as if the AVIF source were not there. This test
    serves the page without it (the recipe's own HTML, that one element cut out; and the WebP
    one too for a browser with neither) and sends the image requests with such a browser's
    ``Accept``: WebP (or the ``<img>``'s JPEG) must be what loads, and nothing else be asked for."""
    server, images = shop
    page, asked = open_storefront(browser, server, page_of(images), without=without)
    try:
        pictures = shown(page)
        assert [p["src"].split("?")[0].rsplit("/", 1)[1] for p in pictures] == [f"w_480.{loads}"] * 2
        assert asked and all(f".{loads}" in url for url in asked), asked
        shot(page, loads)
    finally:
        page.context.close()


def test_the_readme_s_recipe_loads_from_another_origin_with_the_media_base_url(secantus, tmp_path, browser):
    """The README's recipe, copied as written, on a storefront of another origin: with
    ``AVENUE_MEDIA_BASE_URL`` set (as the README says), every URL is the app's, absolute, and
    the picture loads, its focal point kept in view (object-fit: cover, a rounded percentage)."""
    server = Gunicorn(secantus.uri, f"avenue_test_{tmp_path.name[-12:]}", tmp_path / "gunicorn.log",
                      workers=1)
    server.env["AVENUE_MEDIA_BASE_URL"] = f"http://127.0.0.1:{server.port}"
    server.start(60)
    try:
        editor = server.token("editor")
        image = server.uploaded((IMAGES / "good" / "progressive.jpg").read_bytes(), "lamp.jpg", editor)
        assert image["renditions"]["src"].startswith(f"http://127.0.0.1:{server.port}/media/")
        html = page_of([image], recipe(README, README_HEADING))
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        context.set_default_timeout(60_000)
        page = context.new_page()
        # Another origin: a server of the test's on another port, serving the page (a real
        # server, so that Chromium sees the page on loopback too: a page whose address it does
        # not know may not load from loopback at all, its local network access rule).
        shop = ImageServer()
        try:
            page.goto(shop.serve("/index.html", body=html.encode(), headers={"Content-Type": "text/html"}))
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
            src = page.eval_on_selector("img", "img => img.currentSrc")
            assert src.startswith(f"http://127.0.0.1:{server.port}/media/"), src
            assert src.endswith("w_480.avif"), src
            style = page.eval_on_selector("img",
                                          "i => [getComputedStyle(i).objectFit, i.style.objectPosition]")
            assert style[0] == "cover" and re.fullmatch(r"\d+(\.\d)?% \d+(\.\d)?%", style[1]), style
            shot(page, "readme-another-origin")
        finally:
            shop.close()
            context.close()
    finally:
        server.stop(grace=10)
        with pymongo.MongoClient(secantus.uri) as client:
            client.drop_database(server.db_name)
