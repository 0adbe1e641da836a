"""Settings: defaults, the generated secret, and a README that documents every setting."""

from __future__ import annotations

import stat
from pathlib import Path

from abtest.config import SETTINGS, load_settings, normalize_database_url

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_live_in_the_instance_folder(tmp_path):
    settings = load_settings({"ABTEST_INSTANCE_PATH": str(tmp_path / "inst")})
    assert settings.database_url == f"sqlite:///{tmp_path / 'inst' / 'abtest.db'}"
    assert settings.is_sqlite


def test_secret_is_generated_once_and_kept_private(tmp_path):
    first = load_settings({"ABTEST_INSTANCE_PATH": str(tmp_path)})
    second = load_settings({"ABTEST_INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 40
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_environment_wins(tmp_path):
    settings = load_settings({"ABTEST_INSTANCE_PATH": str(tmp_path), "ABTEST_SECRET_KEY": "k",
                              "ABTEST_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.secret_key == "k"
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert not (tmp_path / "secret_key").exists()


def test_postgres_urls_use_psycopg3():
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_readme_documents_every_setting():
    text = README.read_text()
    assert [name for name in SETTINGS if name not in text] == []
