"""What every view shares with the app factory: the CSRF protection, the rate limiter and the
request's database engine (one per app, created by :func:`web.app.create_app`). Importing nothing
else of the web layer, so views and the factory depend on this and never on each other in a circle."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# No limit applies unless a view asks for one (web.public_api for the snippet's routes); counters
# live where ABTEST_RATELIMIT_URL says (create_app). No X-RateLimit headers: Flask-Limiter would
# put a Retry-After on every answer; web.public_api adds one to a 429 only.
limiter = Limiter(key_func=get_remote_address)


def get_engine() -> sa.Engine:
    return current_app.extensions["abtest.engine"]
