"""Pages of the console: server-rendered shells that small JS modules fill from the JSON API.

The pages hold no data of their own: each script calls the same /api/ endpoints any client
does, with the session cookie and the CSRF token, so the API's roles decide what anyone can
do. The role checks here only decide which screens are offered, so nobody opens a screen
whose every call would be refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import HTTPException

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

# Screen -> (title, roles besides admin that may open it; empty: any logged-in user).
SCREENS = {
    "products": ("Products", ()),
    "library": ("Media library", ("editor",)),
    "uploads": ("Uploads", ("any",)),
    "ops": ("Ops dashboard", ("ops",)),
}
# Scripts and styles come only from this app (nothing inline, no CDN); media may come from a
# configured media host, so images are allowed from any https origin too.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def allowed(screen: str, role: str) -> bool:
    """Whether ``role`` may open ``screen``."""
    roles = SCREENS[screen][1]
    return role == "admin" or "any" in roles or role in roles


def _screen(screen: str, template: str, **context: object) -> ResponseReturnValue:
    if not current_user.is_authenticated:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if not allowed(screen, current_user.role):
        title = SCREENS[screen][0]
        return render_template("console/forbidden.html", title=title, screens=_menu()), 403
    return render_template(template, screen=screen, title=SCREENS[screen][0], screens=_menu(), **context)


def error_page(error: HTTPException) -> Response:
    """A console address's answer to an HTTP error (a mistyped or stale link, a method a page
    does not take): a page of the console, not Werkzeug's bare one, under the error's status.
    Drawn from the error alone: no user is loaded, so it answers while the database is away."""
    messages = {404: "Nothing is at this address. The link may be mistyped or out of date.",
                405: f"This page cannot be opened with {request.method}."}
    title = error.name or "Error"
    message = messages.get(error.code or 500, error.description or title)
    # The template straight from Jinja's environment: render_template's context processors
    # include flask-login's, which loads the user.
    template = current_app.jinja_env.get_template("console/error.html")
    page = template.render(title=title[:1] + title[1:].lower(), message=message)
    response = Response(page, status=error.code or 500, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP  # the blueprint's hook: not run for a routing error
    return response


def _menu() -> list[tuple[str, str]]:
    role = current_user.role if current_user.is_authenticated else ""
    return [(name, title) for name, (title, _) in SCREENS.items() if role and allowed(name, role)]


@bp.after_request
def content_security_policy(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages show who is logged in
    return response


@bp.get("/")
def home() -> ResponseReturnValue:
    """The first screen the user may open, or the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("console.login"))
    first = next(name for name in SCREENS if allowed(name, current_user.role))
    return redirect(url_for(f"console.{first}"))


@bp.get("/login")
def login() -> str:
    """The login form (it posts to /api/auth/login from the browser)."""
    return render_template("console/login.html", title="Log in", screens=[])


@bp.get("/products")
def products() -> ResponseReturnValue:
    """Admin: list, search and create products."""
    return _screen("products", "console/products.html")


@bp.get("/products/<sku>")
def product(sku: str) -> ResponseReturnValue:
    """Admin: one product's photos: upload, reorder, delete, variants."""
    return _screen("products", "console/product.html", sku=sku)


@bp.get("/library")
def library() -> ResponseReturnValue:
    """Editors and admins: the website builder's media library, and the storefront's client
    hints recipe (docs/media.md, "Client hints") for the origin its images are served from."""
    return _screen("library", "console/library.html", media_origin=media_origin())


def media_origin() -> str:
    """Where a storefront loads images from: ``AVENUE_MEDIA_BASE_URL`` (a CDN or media host)
    when set, else this server."""
    base = str(current_app.config.get("AVENUE_MEDIA_BASE_URL") or request.host_url).rstrip("/")
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else base


@bp.get("/uploads")
def uploads() -> ResponseReturnValue:
    """Any logged-in user: their own uploads."""
    return _screen("uploads", "console/uploads.html")


@bp.get("/ops")
def ops() -> ResponseReturnValue:
    """Ops and admins: storage, safety, history and alerts."""
    return _screen("ops", "console/ops.html")

