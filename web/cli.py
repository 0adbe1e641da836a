"""The ``abtest`` console script: the core commands (:mod:`abtest.cli`) plus ``serve``, which
runs the web app and so belongs to the web side (the core never imports it)."""

from __future__ import annotations

import click

from abtest import __version__
from abtest.cli import main, open_database, safe_url

__all__ = ["main"]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--demo", is_flag=True, help="On an empty database, seed demo experiments with simulated data and a demo login.")
def serve(host: str, port: int, workers: int, demo: bool) -> None:
    """Run the web app and API with a production WSGI server.

    On the default SQLite database pending migrations are applied first; other databases need
    `abtest db upgrade`.
    """
    from web.server import run

    settings, engine = open_database()
    if demo:
        from dataclasses import replace

        from abtest.demo import seed_demo

        for line in seed_demo(engine, instance_path=settings.instance_path):
            click.echo(line)
        settings = replace(settings, demo=True)  # the login page shows the demo login
    click.echo(f"abtest {__version__} on http://{host}:{port}/  (database: {safe_url(settings.database_url)})")
    engine.dispose()
    run(settings, host=host, port=port, workers=workers)
