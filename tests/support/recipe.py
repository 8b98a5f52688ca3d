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


def recipe() -> str:
    """The template under the recipe's heading in docs/media.md."""
    section = PAGE.read_text().split(HEADING, 1)[1]
    match = re.search(r"```html\+jinja\n(.*?)```", section, re.S)
    assert match is not None, f"no html+jinja block under {HEADING!r} in {PAGE}"
    return match.group(1)


def render(image: dict[str, Any], sizes: str) -> str:
    """The recipe for ``image`` (an image object) in a slot ``sizes`` wide, as a storefront's
    Jinja would render it (HTML escaping on), a name the object lacks being an error."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(recipe()).render(image=image, sizes=sizes)
