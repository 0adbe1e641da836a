"""The Flask app: ``create_app`` wires settings, the database engine, security and the blueprints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from htmx_flask import Htmx
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

import abtest
from abtest.config import Settings, load_settings
from abtest.db import make_engine
from abtest.store.target import attach as attach_events
from abtest.errors import AbtestError
from web import snippet_files
from web.extensions import csrf, get_engine

# Pages get no third-party code: scripts and styles come from /static only. Inline styles stay
# allowed because htmx adds its indicator style and the SVG charts carry style attributes.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# JSON is never a document: nothing in it may load, run or be framed, and it is never sniffed as HTML.
API_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


# The heading of an error page by status, where the default ("Not possible", "405 Method Not
# Allowed") would mislead: what happened, in words; the message under it says why.
ERROR_TITLES = {404: "Not found"}


class _SessionInterface(SecureCookieSessionInterface):
    """Session cookies get the Secure flag whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def create_app(settings: Settings | None = None, engine: sa.Engine | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    app.session_interface = _SessionInterface()
    if settings.trusted_proxies:  # the client's address and scheme come from the proxies' headers
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.extensions["abtest.settings"] = settings
    app.extensions["abtest.engine"] = engine or make_engine(settings.database_url)
    attach_events(app.extensions["abtest.engine"], settings.events_url)
    Htmx(app)
    csrf.init_app(app)
    _register_api(app)
    _register_pages(app)
    snippet_files.register(app)  # abtest.js & co.: gzip, ETag, cacheable (web.snippet_files)

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        api = request.path.startswith("/api/")
        for name, value in (API_SECURITY_HEADERS if api else SECURITY_HEADERS).items():
            response.headers.setdefault(name, value)
        if not api:
            response.vary.add("HX-Request")
        return response

    @app.get("/healthz")
    def health():  # type: ignore[no-untyped-def]
        """Liveness and database reachability, for load balancers and the test suite."""
        try:
            with get_engine().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return jsonify(status="error", database="unreachable", version=abtest.__version__), 503
        return jsonify(status="ok", database="ok", version=abtest.__version__)

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return redirect(url_for("experiments.index"))

    return app


def _register_api(app: Flask) -> None:
    from flask_cors import CORS

    from web.api import api
    from web.overload import init_overload
    from web.public_api import init_public_api

    app.register_blueprint(api)
    init_overload(app)  # first: a request shed for waiting too long does no other work
    csrf.exempt(api)  # token-authenticated, never cookie-authenticated
    # Only the snippet's routes are reachable from other origins, each public key from its own
    # allowed origins, and rate-limited (web.public_api); the admin API is not.
    init_public_api(app)
    # The study reporter (abtest-study.js) on the tested site posts here without cookies.
    CORS(app, resources={r"/s/[^/]+/reached": {"origins": "*", "supports_credentials": False}},
         allow_headers=["Content-Type"], methods=["POST", "OPTIONS"], max_age=86400)


def _register_pages(app: Flask) -> None:
    from web.api import http_error, http_headers
    from web.auth import current_user, designer
    from web.experiments import experiments

    from web.kind_pages import PAGES
    from web.results import results
    from web.studies import studies
    from web.study_form import study_form
    from web.study_images import study_images
    from web.study_results import study_results
    from web.survey_form import survey_form
    from web.survey_pages import survey_pages

    for blueprint in (designer, experiments, results, studies, study_results, study_form, survey_form, survey_pages):
        app.register_blueprint(blueprint)
    app.register_blueprint(study_images)  # first-click screens: public GET, token-guarded upload

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"current_user": current_user(), "version": abtest.__version__, "kind_pages": PAGES}

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return render_template("error.html", title="Form expired",
                               message="The form's security token is missing or stale. Go back, reload the "
                                       "page and submit again."), 400

    @app.errorhandler(AbtestError)
    def _domain_error(exc: AbtestError):  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            return jsonify(error=exc.to_dict()), exc.status, exc.headers()
        title = ERROR_TITLES.get(exc.status, "Not possible")
        return render_template("error.html", title=title, message=str(exc.message)), exc.status, exc.headers()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            return http_error(exc)
        title = ERROR_TITLES.get(exc.code or 500, f"{exc.code} {exc.name}")
        return render_template("error.html", title=title, message=exc.description), exc.code, http_headers(exc)

    @app.after_request
    def _errors_replace_the_page(response):  # type: ignore[no-untyped-def]
        # An htmx request that fails (say, a poll of a deleted experiment) shows the error page
        # instead of swapping it into the fragment it meant to refresh.
        if response.status_code >= 400 and request.headers.get("HX-Request") and "HX-Redirect" not in response.headers:
            response.headers["HX-Retarget"] = "body"
            response.headers["HX-Reswap"] = "innerHTML"
        return response
