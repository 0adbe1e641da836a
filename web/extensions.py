"""What every view shares with the app factory: the CSRF protection and the request's database
engine (one per app, created by :func:`web.app.create_app`). Importing nothing else of the web
layer, so views and the factory depend on this and never on each other in a circle."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def get_engine() -> sa.Engine:
    return current_app.extensions["abtest.engine"]
