"""The Flask app factory and its health endpoint."""

from __future__ import annotations

import sqlalchemy as sa

from abtest.config import Settings
from web import create_app


def test_health_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


def test_health_answers_503_when_database_is_unreachable(tmp_path):
    settings = Settings("postgresql+psycopg://nobody@127.0.0.1:1/none", "k", tmp_path)
    app = create_app(settings, engine=sa.create_engine(settings.database_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_index_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"abtest is running" in response.data
