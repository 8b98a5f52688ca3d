"""The storefront recipe of docs/media.md (its ``html+jinja`` block), read from the page and
rendered: the docs' check and the browser test build their HTML from the very text a reader
copies, so the recipe cannot drift from the image object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "media.md"
HEADING = "### The storefront recipe"
README = ROOT / "README.md"
README_HEADING = "## Images on a storefront"


def recipe(page: Path = PAGE, heading: str = HEADING) -> str:
    """The template under the recipe's heading in docs/media.md (or README.md's, with
    ``page=README, heading=README_HEADING``: the one a newcomer copies first)."""
    section = page.read_text().split(heading, 1)[1]
    match = re.search(r"```html\+jinja\n(.*?)```", section, re.S)
    assert match is not None, f"no html+jinja block under {heading!r} in {page}"
    return match.group(1)


def render(image: dict[str, Any], sizes: str, template: str | None = None) -> str:
    """The recipe (``template``, docs/media.md's by default) for ``image`` (an image object) in
    a slot ``sizes`` wide, as a storefront's Jinja would render it (HTML escaping on), a name
    the object lacks being an error."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(template or recipe()).render(image=image, sizes=sizes)
