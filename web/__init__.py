"""The Flask app: ``create_app`` wires settings, the database engine and the blueprints."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, current_app, jsonify, render_template
from htmx_flask import Htmx

import abtest
from abtest.config import Settings, load_settings
from abtest.db import make_engine
from abtest.errors import AbtestError


def create_app(settings: Settings | None = None, engine: sa.Engine | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions["abtest.settings"] = settings
    app.extensions["abtest.engine"] = engine or make_engine(settings.database_url)
    Htmx(app)
    _register_api(app)

    @app.errorhandler(AbtestError)
    def _domain_error(exc: AbtestError):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.to_dict()), exc.status

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
        return render_template("index.html", version=abtest.__version__)

    return app


def _register_api(app: Flask) -> None:
    from flask_cors import CORS

    from werkzeug.exceptions import HTTPException

    from web.api import api, http_error

    app.register_blueprint(api)
    app.register_error_handler(HTTPException, http_error)
    # Only the snippet's routes are reachable from other origins; the admin API is not.
    # sendBeacon posts in credentials mode "include", which Chromium refuses with a wildcard
    # origin, so the page's own origin is echoed. Safe: these routes authenticate by token
    # (header or ?key=), never by cookie.
    CORS(app, resources={r"/api/v1/(config|assign|events)": {"origins": "*"}}, supports_credentials=True,
         allow_headers=["Authorization", "Content-Type"], methods=["GET", "POST", "OPTIONS"], max_age=86400)


def get_engine() -> sa.Engine:
    return current_app.extensions["abtest.engine"]
