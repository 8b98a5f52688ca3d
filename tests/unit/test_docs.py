"""The docs name only what exists: endpoints, variables, files, links; the generated parts are current.

README.md and every page under docs/ are read as markdown: code spans, fenced blocks, tables and
links. What they name is checked against the app's URL map, the variables the code reads, the
repository's files and the pages' own headings. docs/generate.py writes the endpoint tables
(from the OpenAPI document) and the configuration tables (from .env.example): regenerating must
give the committed text, and .env.example must list exactly the variables the code reads, with
the defaults the code spells.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import re
import sys
import types
from functools import cache
from pathlib import Path

import mongomock
import pytest

from avenue.server import Limits
from tests.helpers import make_app
from tests.support import source

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
VARIABLE = re.compile(r"\b(?:AVENUE|GUNICORN|MONGO)_[A-Z0-9_]*[A-Z0-9]\b")
# Names the docs spell on purpose although nothing reads them.
NOT_READ_ON_PURPOSE = {"AVENUE_MAX_UPLAOD_BYTES": "the typo the start-up warning catches"}
# Variables the code reads that .env.example does not list, and why.
READ_BUT_NOT_SETTINGS = {
    "AVENUE_METRICS_PREPARED_BY": "gunicorn.conf.py's own marker, set and read by it",
    "VIPS_CONCURRENCY": "libvips's own variable: avenue/media/ingest/vips.py only defers to it",
    "MALLOC_MMAP_THRESHOLD_": "glibc's own variable: gunicorn.conf.py only defers to it",
    "MALLOC_TRIM_THRESHOLD_": "glibc's own variable: gunicorn.conf.py only defers to it",
}
# Repository paths the docs name that are not in the repository, and why.
NOT_IN_THE_REPOSITORY = {"deploy/certs": "the operator's certificates, which compose.yaml mounts"}
# Defaults the code spells that are not the setting's default, and why.
SENTINEL_DEFAULTS = {
    "GUNICORN_CLIENT_THREADS": "0 stands for a quarter of the threads (avenue/server.py); a set one is > 0",
    "GUNICORN_CLIENT_CONNECTIONS": "0 stands for a quarter of worker_connections; a set one is > 0",
}
# A read of a process environment variable: os.environ / os.getenv, or config.py's and server.py's
# helpers (_int, _bool, _list, _number), with a literal name.
READ = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|\b_int|\b_bool|\b_list|\b_number|\b_choice|\bSetting)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""
    r"""|["']([A-Z][A-Z0-9_]+)["']\s+(?:not\s+)?in\s+os\.environ""")


@cache
def generator() -> types.ModuleType:
    """docs/generate.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def app_sources() -> list[Path]:
    return [*sorted((ROOT / "avenue").rglob("*.py")), ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]


def reads(paths: list[Path]) -> set[str]:
    """The environment variables these files read by name."""
    return {next(name for name in match.groups() if name)
            for path in paths for match in READ.finditer(path.read_text())}


def env_example() -> dict[str, str]:
    """.env.example's variables and values, in the generator's reading."""
    return {variable.name: variable.default for section in generator().parse_env_example(
        (ROOT / ".env.example").read_text()) for variable in section.variables}


# --- reading the markdown ---

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return FENCE.sub("", text)


def spans(text: str) -> list[str]:
    return [match.group(2).strip() for match in SPAN.finditer(prose(text))]


def table_endpoints(text: str) -> list[str]:
    """``METHOD /path`` of each row of a table with a ``method`` and a ``path`` column."""
    found, columns = [], None
    for line in prose(text).splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if columns is None:
            columns = cells if {"method", "path"} <= set(cells) else []
        elif columns and not set(line) <= set("|-: "):
            found.append(f"{cells[columns.index('method')]} {cells[columns.index('path')]}")
    return found


def endpoints(text: str) -> list[str]:
    """Every ``METHOD /path`` a page names: in a code span, or in an endpoint table's row."""
    named = [span for span in spans(text) if re.fullmatch(rf"(?:{'|'.join(METHODS)}) /\S*", span)]
    return named + table_endpoints(text)


def template(path: str) -> str:
    """A path with its query, optional parts and parameters reduced to one shape."""
    path = re.split(r"[?\[]", path, maxsplit=1)[0]
    return re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^#{1,6} (.+)$", prose(page.read_text()), re.M):
        base = slug(match.group(1))
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


@cache
def ignored_patterns() -> tuple[str, ...]:
    return tuple(line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))


def ignored(relative: str) -> bool:
    """Whether git ignores ``relative`` (a path under the root) or a folder it is in."""
    parts = relative.rstrip("/").split("/")
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        for pattern in ignored_patterns():
            anywhere = "/" not in pattern and fnmatch.fnmatch(parts[end - 1], pattern)
            if anywhere or fnmatch.fnmatch(prefix, pattern):
                return True
    return False


def repository_paths(text: str) -> set[str]:
    """Every word of a code span or a fenced block that names a path in the repository: it starts
    with a top-level file or folder of the repository (and is not git-ignored)."""
    top = {path.name for path in ROOT.iterdir() if not ignored(path.name) and path.name != ".git"}
    words = [word for span in spans(text) for word in span.split()]
    words += [word for block in FENCE.finditer(text) for word in block.group(0).split()]
    found = set()
    for word in words:
        word = re.sub(r":\d+$", "", word.lstrip("\"'(").rstrip("\"'),;.:"))
        if re.search(r"[<>{}…$|=]|\.\.\.", word) or word.startswith(("/", ".venv")):
            continue
        first = word.split("/", 1)[0]
        if first in top and ("/" in word or (ROOT / word).is_file()) and not ignored(word):
            found.add(word)
    return found


def each_page(check):
    """Run ``check(page, text)`` on every page; collect its complaints as 'page: complaint'."""
    problems = []
    for page in PAGES:
        problems += [f"{page.relative_to(ROOT)}: {problem}" for problem in check(page, page.read_text())]
    return problems


# --- the checks ---

@pytest.fixture(scope="module")
def url_map():
    shared = mongomock.MongoClient()
    app = make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"), "docs",
                   AVENUE_ACCESS_LOG="off")
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(template(rule.rule), set()).update(rule.methods or ())
    return methods


def test_the_docs_name_endpoints_and_the_api_tables_cover_every_api_route(url_map):
    def check(page, text):
        for named in endpoints(text):
            method, path = named.split(" ", 1)
            if method not in url_map.get(template(path), set()):
                yield f"{named} is not a route of the app"
    assert each_page(check) == []
    tabled = {template(path) for named in table_endpoints((ROOT / "docs/api.md").read_text())
              for path in [named.split(" ", 1)[1]]}
    assert {rule for rule in url_map if rule.startswith("/api/")} <= tabled


def test_every_variable_the_docs_name_is_read_by_the_code():
    read = reads(app_sources()) | reads(sorted((ROOT / "tests").rglob("*.py")))

    def check(page, text):
        for name in sorted(set(VARIABLE.findall(text)) - read - set(NOT_READ_ON_PURPOSE)):
            yield f"{name} is read by nothing"
    assert each_page(check) == []


def test_every_file_the_docs_name_exists():
    def check(page, text):
        for path in sorted(repository_paths(text)):
            if path.rstrip("/") in NOT_IN_THE_REPOSITORY:
                continue
            if not (list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()):
                yield f"`{path}` does not exist"
    assert each_page(check) == []


def test_every_relative_link_resolves_to_a_file_and_its_heading():
    def check(page, text):
        for target in LINK.findall(prose(text)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                yield f"({target}): no such file"
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                yield f"({target}): no heading with that anchor"
    assert each_page(check) == []


def test_the_generated_docs_are_up_to_date():
    stale = [str(path.relative_to(ROOT)) for path, text in generator().expected().items()
             if path.read_text() != text]
    assert stale == [], "run python docs/generate.py"


def test_env_example_lists_exactly_the_variables_the_code_reads():
    listed = set(env_example())
    read = reads(app_sources())
    assert read - listed - set(READ_BUT_NOT_SETTINGS) == set(), "read by the code, missing from .env.example"
    assert listed - read == set(), "in .env.example, read by nothing"


#: The units avenue/config.py spells its defaults in (``10 * MIB``, ``DAY``).
UNITS = {"MIB": 1024 * 1024, "HOUR": 3600, "DAY": 24 * 3600}


def literal_defaults() -> dict[str, set[str]]:
    """The defaults the code spells next to a variable's name, as .env.example would write them
    (the worker's from its Limits); an empty or computed default is left out."""
    def spelled(value) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    found: dict[str, set[str]] = {}
    for path in app_sources():
        for node in source.nodes(path):
            if not (isinstance(node, ast.Call) and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and READ.search(ast.unparse(node))):
                continue
            name, default = node.args[0].value, node.args[1]
            if isinstance(default, ast.Attribute) and default.attr in Limits.__dataclass_fields__:
                value = getattr(Limits, default.attr)
            elif all(isinstance(part, ast.Constant | ast.BinOp | ast.operator)
                     or isinstance(part, ast.Name) and part.id in UNITS or isinstance(part, ast.Load)
                     for part in ast.walk(default)):
                value = eval(compile(ast.Expression(default), str(path), "eval"),
                             {"__builtins__": {}, **UNITS})
            else:
                continue
            if value not in ("", None):
                found.setdefault(name, set()).add(spelled(value))
    return found


def test_env_example_gives_each_variable_the_default_the_code_spells():
    listed = env_example()
    defaults = literal_defaults()
    assert len(defaults) > 40
    assert {name: values for name, values in defaults.items()
            if values != {listed.get(name)} and name not in SENTINEL_DEFAULTS} == {}


def storefront_image(**ref: object) -> dict:
    """An image object as the API answers it (a 1024 x 768 photo with a placeholder)."""
    from bson import ObjectId

    from avenue.media import UrlSigner
    from avenue.media.buckets import PRODUCTS
    from avenue.presentation.objects import image_ref, ref_object

    thumb = {"width": 200, "height": 150}
    meta = {"role": "original", "format": "jpeg", "content_type": "image/jpeg", "width": 1024, "height": 768,
            "sha256": "0" * 64, "placeholder": {"blurhash": "L" * 28, "color": "#a0b0c0"},
            "variants": {"thumb": {"webp": thumb, "jpeg": thumb}}, "focal_point": {"x": 0.25, "y": 0.5}}
    doc = {"_id": ObjectId(), "filename": "lamp.jpg", "length": 90_000, "uploadDate": None, "metadata": meta}
    return ref_object({**image_ref(doc), **ref}, PRODUCTS, UrlSigner(key="k" * 32))


@pytest.mark.parametrize("ref", [{}, {"visibility": "private", "alt": "A lamp & its shade"}])
def test_the_storefront_recipe_renders_from_an_image_object_with_no_name_it_lacks(ref):
    from markupsafe import escape

    from tests.support.recipe import render

    image = storefront_image(**ref)
    html = render(image, sizes="(min-width: 1024px) 33vw, 100vw")
    renditions = image["renditions"]
    for ext in ("avif", "webp"):
        assert f'<source type="image/{ext}" srcset="{escape(renditions["srcset"][ext])}"' in html
    assert f'src="{escape(renditions["src"])}" srcset="{escape(renditions["srcset"]["jpg"])}"' in html
    assert 'width="1024" height="768"' in html and f'alt="{escape(image.get("alt", ""))}"' in html
    assert "object-position: 25.0% 50.0%; background-color: #a0b0c0" in html


def test_the_recipes_name_only_fields_the_image_object_documents():
    from avenue.apidoc import document
    from tests.support.recipe import recipe

    schemas = document()["components"]["schemas"]
    image = schemas["Image"]["properties"]
    renditions = schemas["Renditions"]["properties"]
    jinja = recipe()
    assert set(re.findall(r"\bimage\.(\w+)", jinja)) <= set(image)
    assert set(re.findall(r"\br\.(\w+)", jinja)) <= set(renditions)


def test_the_readme_s_storefront_recipe_is_the_docs_one():
    # It was a short form of its own that lacked object-fit: cover (so object-position did
    # nothing) and printed the focal point unrounded (28.199999999999996%): issue 64.
    from tests.support.recipe import README, README_HEADING, recipe

    assert recipe(README, README_HEADING) == recipe()


def test_every_make_target_the_docs_name_is_in_the_makefile():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))

    def check(page, text):
        for target in sorted(set(re.findall(r"`make ([a-z][a-z-]*)", text)) - targets):
            yield f"`make {target}` is not a target of the Makefile"
    assert each_page(check) == []


def _metric_names() -> set[str]:
    """Every metric the app exposes, as /metrics names it: the collectors' (avenue/metrics.py)
    and the scrape's gauges (avenue/scrape.py); a counter's name ends in ``_total``."""
    names = set()
    for path in (ROOT / "avenue").rglob("*.py"):
        for kind, name in re.findall(r"\b(Counter|Histogram|Gauge|Summary|GaugeMetricFamily|"
                                     r"CounterMetricFamily)\(\s*\"(avenue_[a-z_]+)\"", path.read_text()):
            names.add(f"{name}_total" if kind in {"Counter", "CounterMetricFamily"} else name)
    return names


def test_docs_operations_lists_exactly_the_metrics_the_app_exposes():
    """docs/operations.md's metrics table names every metric, and only metrics that exist (a
    cell's ``_suffix`` shorthand names the first metric's family with that suffix)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    exposed = _metric_names()
    documented = set()
    for row in re.findall(r"^\| (`avenue_[^|]*)\|", text, re.M):
        first, *rest = re.findall(r"`(avenue_[a-z_]+|_[a-z_]+)`", row)
        documented.add(first)
        for suffix in rest:
            if suffix.startswith("avenue_"):
                documented.add(suffix)
                continue
            parts = first.split("_")
            stems = ["_".join(parts[:n]) for n in range(len(parts) - 1, 1, -1)]
            named = (stem + suffix for stem in stems if stem + suffix in exposed)
            documented.add(next(named, first + suffix))
    assert len(exposed) >= 20
    assert sorted(exposed - documented) == [], "metrics docs/operations.md does not list"
    assert sorted(documented - exposed) == [], "metrics docs/operations.md lists that the app does not expose"


def test_every_file_the_requirements_comments_name_exists():
    # Each pin's comment says what uses it; a module renamed or removed left it naming a ghost
    # (avenue/dotenv.py, after .env loading moved to avenue/envfile.py).
    comments = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("#")]
    named = {path for line in comments for path in re.findall(r"\b[\w.-]+(?:/[\w.-]+)+\.\w+\b", line)}
    assert named and sorted(path for path in named if not (ROOT / path).exists()) == []
