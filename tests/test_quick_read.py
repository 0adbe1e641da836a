"""`abtest assign` reads an experiment through the driver itself (abtest.store.quick_read); it must
give the very definition the pipeline loads, and step aside (None) whenever it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from abtest import pipeline
from abtest.kinds import load_toml
from abtest.schema import head_revisions
from abtest.store.quick_read import load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.mark.parametrize("name", ["search-ranking", "checkout-button"])
def test_the_quick_read_equals_the_pipelines(session, database_url, name):
    # search-ranking: namespace, targeting, a plan, fixed analysis; checkout-button: several metrics.
    pipeline.sync(session, [load_toml(EXPERIMENTS / f"{name}.toml")])
    session.commit()
    _row, expected = pipeline.load(session, name)
    quick = load_experiment(database_url, name)
    assert quick == expected
    assert (quick.ranges, quick.namespace, dict(quick.targeting)) == (expected.ranges, expected.namespace,
                                                                        dict(expected.targeting))


def test_the_quick_read_steps_aside(session, database_url, engine):
    pipeline.sync(session, [load_toml(EXPERIMENTS / "checkout-study.toml"),
                            load_toml(EXPERIMENTS / "checkout-button.toml")])
    session.commit()
    assert load_experiment(database_url, "checkout-study") is None  # a study: the pipeline's kind dispatch
    assert load_experiment(database_url, "no-such-key") is None  # the pipeline words the error
    assert load_experiment(database_url + ("&" if "?" in database_url else "?") + "x=1", "checkout-button") is None
    with engine.begin() as conn:  # a schema the code does not expect: the pipeline migrates or refuses
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        assert load_experiment(database_url, "checkout-button") is None
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"),
                         {"v": next(iter(head_revisions()))})


def test_unknown_urls_step_aside(tmp_path):
    assert load_experiment("sqlite:///:memory:", "x") is None
    assert load_experiment(f"sqlite:///{tmp_path / 'missing.db'}", "x") is None
    assert not (tmp_path / "missing.db").exists()  # nothing created: the ordinary path does that
    assert load_experiment("mysql://u@h/db", "x") is None
