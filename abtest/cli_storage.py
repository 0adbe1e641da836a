"""``abtest db …`` and ``abtest events …``: the registry's schema and rollups, the ClickHouse
events table (one server or a cluster), and copying events into it."""

from __future__ import annotations

from typing import Any

import click

from abtest.cli_database import open_database, safe_url
from abtest.clickhouse.client import is_clickhouse_url
from abtest.config import load_settings


@click.group()
def db() -> None:
    """Database schema and rollup commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the database named by ABTEST_DATABASE_URL.

    With ABTEST_EVENTS_URL on ClickHouse, also create its events table (on every shard of
    ABTEST_CLICKHOUSE_CLUSTER when set: see `abtest db clickhouse-sql`)."""
    from abtest.db import make_engine, upgrade

    settings = load_settings()
    upgrade(make_engine(settings.database_url))
    click.echo(f"database schema is up to date: {safe_url(settings.database_url)}")
    if is_clickhouse_url(settings.events_url):
        from abtest.clickhouse.client import connect
        from abtest.clickhouse.schema import create_schema

        cluster = settings.clickhouse_cluster
        create_schema(connect(settings.events_url), cluster or None)
        click.echo(f"events table is up to date: {safe_url(settings.events_url)}"
                   + (f" (on cluster {cluster}: events_local and units_local on every shard, events and units "
                      "distributed)" if cluster else " (and the units table the reports read)"))


@db.command("clickhouse-sql")
@click.option("--cluster", envvar="ABTEST_CLICKHOUSE_CLUSTER", default="", show_envvar=True,
              help="the ClickHouse cluster (its name in remote_servers); empty: one server")
@click.option("--database", default=None,
              help="the events database (default: the one ABTEST_EVENTS_URL names, else abtest)")
def db_clickhouse_sql(cluster: str, database: str | None) -> None:
    """Print the ClickHouse statements `abtest db upgrade` runs for the events, to review them
    or run them by hand (e.g. `clickhouse-client --multiquery < events.sql`). Connects to nothing."""
    import os

    from abtest.clickhouse.client import database_of
    from abtest.clickhouse.schema import script

    if database is None:
        url = os.environ.get("ABTEST_EVENTS_URL") or ""
        database = database_of(url) if is_clickhouse_url(url) else "abtest"
    click.echo(script(database, cluster.strip() or None), nl=False)


@db.command("rollup")
@click.argument("keys", nargs=-1)
def db_rollup(keys: tuple[str, ...]) -> None:
    """Bring the per-unit rollups of experiments KEYS (default: all) up to date.

    Every report does this itself for the units that changed; run it once after upgrading a
    database that already holds many events (the first build reads them all: about 5 s per
    million events on a small server), so no results page waits for it.
    """
    from abtest.pipeline import refresh_rollups

    _settings, engine = open_database()
    for key, done in refresh_rollups(engine, list(keys) or None):
        if done.full or done.units:
            click.echo(f"{key}: {done.units} units rolled up" + (" (set-based rebuild)" if done.full else ""))
        else:
            click.echo(f"{key}: up to date")


@click.group()
def events() -> None:
    """Move events between stores."""


@events.command("export")
@click.option("--to", "to", required=True, help="ClickHouse URL: chdb:///path or clickhouse://user:pass@host:8123/db")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="only events stamped at or after this UTC time")
def events_export(to: str, since: Any) -> None:
    """Copy the registry's events into ClickHouse (creating its table), skipping those already there.

    Resumable and idempotent: re-run it after an interruption, or before switching
    ABTEST_EVENTS_URL over, and nothing is counted twice."""
    from datetime import UTC

    from abtest.clickhouse.client import connect
    from abtest.clickhouse.export import export
    from abtest.clickhouse.schema import create_schema

    if not is_clickhouse_url(to):
        raise click.BadParameter("must be chdb:///path or clickhouse://user:pass@host:8123/db", param_hint="--to")
    settings, engine = open_database()
    client = connect(to)
    create_schema(client, settings.clickhouse_cluster or None)
    done = export(engine, client, since.replace(tzinfo=UTC) if since else None,
                  lambda step: click.echo(f"{step.read} events read, {step.copied} copied", err=True))
    click.echo(f"exported to {safe_url(to)}: {done.copied} events copied, {done.read - done.copied} already there")
