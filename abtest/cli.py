"""The ``abtest`` command (click): parse, call the library, print. No logic of its own.

Every command but ``serve``, which the web package adds (:mod:`web.cli`, the console script's
entry point), so this core package never imports the web app.

Exit codes: 0 success, 2 usage error (click), 1 a domain error printed as one line on stderr.
Heavy modules (statsmodels, the database layer) are imported inside the commands that need them,
so ``abtest --help`` and ``abtest assign`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from abtest import __version__
from abtest.config import SETTINGS, load_settings
from abtest.cli_database import open_database, safe_url  # noqa: F401  (re-exported: web.cli uses them)
from abtest.errors import AbtestError


class _Group(click.Group):
    """Turns domain errors into one clear line on stderr and exit code 1 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AbtestError as exc:
            lines = exc.lines() if hasattr(exc, "lines") else [f"error: {exc}"]
            for line in lines:
                click.echo(line, err=True)
            ctx.exit(1)


_ENV_HELP = "\b\n" + "\n".join(f"{name}\n    {text}" for name, text in SETTINGS.items())


@click.group(cls=_Group, epilog="Settings come from the environment:\n\n" + _ENV_HELP)
@click.version_option(__version__, prog_name="abtest")
def main() -> None:
    """abtest: self-hosted A/B experiments and usability studies with honest statistics.

    Start with `abtest serve --demo`, then define experiments as TOML files and load them
    with `abtest sync experiments/`.
    """


def _definition_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob("*.toml"))
            if not found:
                raise AbtestError(f"{path}: no .toml files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def sync(paths: tuple[Path, ...]) -> None:
    """Load definitions (experiments and studies) from TOML files or folders into the registry.

    Every file is validated first; if any is invalid, nothing is written and each problem is
    printed as `file: field: message`.
    """
    from abtest import pipeline
    from abtest.checks import InvalidDefinition
    from abtest.db import session_scope
    from abtest.kinds import load_toml

    from abtest.studies.images import store_for

    files = _definition_files(paths)
    problems: list[str] = []
    parsed = []
    settings, engine = open_database()
    images = store_for(settings.instance_path)
    for file in files:
        try:
            parsed.append((file, load_toml(file, images)))
        except InvalidDefinition as exc:
            problems.extend(exc.lines())
    with session_scope(engine) as session:
        keys: dict[str, Path] = {}
        for file, definition in parsed:
            if definition.key in keys:
                problems.append(f"{file}: key: {definition.key!r} is also defined in {keys[definition.key]}")
                continue
            keys[definition.key] = file
            try:
                pipeline.plan_sync(session, [definition])
            except AbtestError as exc:
                problems.append(f"{file}: {exc.field or '(file)'}: {exc.message}")
        if problems:
            for line in problems:
                click.echo(line, err=True)
            click.echo(f"nothing written: {len(problems)} problem(s) in {len(files)} file(s)", err=True)
            sys.exit(1)
        results = pipeline.sync(session, [d for _f, d in parsed])
    for result, (file, definition) in zip(results, parsed):
        click.echo(f"{result.action:9} {result.key} ({definition.status})  <- {file}")


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--attr")
        attributes[name] = value
    return attributes


@main.command()
@click.argument("key")
@click.argument("unit")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="A visitor attribute for targeting (repeatable).")
@click.option("--force", metavar="VARIANT", help="Force this variant, as a QA override would.")
def assign(key: str, unit: str, attrs: tuple[str, ...], force: str | None) -> None:
    """Show which variant UNIT gets in experiment KEY, and why. Records nothing.

    The first line is the variant key (or `none`), the second the reason.
    """
    from abtest.assignment import assign as assign_unit
    from abtest.store.quick_read import load_experiment

    attributes = _attributes(attrs)
    overrides = {key: force} if force else None
    # The common case without SQLAlchemy (see abtest.store.quick_read); studies, unknown keys and
    # anything unusual take the pipeline, which owns migrations and error messages.
    definition = load_experiment(load_settings().database_url, key)
    if definition is not None:
        result = assign_unit(definition, unit, attributes, overrides)
    else:
        from abtest import pipeline  # the database layer: ~0.4 s to import
        from abtest.db import session_scope
        from abtest.kinds import KINDS

        _settings, engine = open_database()
        with session_scope(engine) as session:
            _row, definition = pipeline.load(session, key)
        result = KINDS[definition.kind].assign(definition, unit, attributes, overrides)
    click.echo(result.variant or "none")
    click.echo(f"reason: {result.reason}: {result.detail}")


@main.command()
@click.argument("key")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: tables for a terminal; json: the same document as the results API.")
@click.option("--by", metavar="ATTRIBUTE", help="Break every metric down by this attribute (exploratory).")
def analyze(key: str, output: str, by: str | None) -> None:
    """Print the results of KEY (an experiment or a study): effects with intervals, tests, verdict."""
    import json

    from abtest import pipeline
    from abtest.report_text import to_text

    _settings, engine = open_database()
    report = pipeline.analyze(engine, key, by=by)
    click.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False) if output == "json" else to_text(report), nl=False)
    if output == "json":
        click.echo()


# The lifecycle's states and the kinds of test, spelled out so `--help` needs no database layer
# (tests check them against abtest.store.registry.TRANSITIONS and abtest.kinds.KINDS).
STATUSES = ("draft", "running", "stopped", "archived")
KIND_NAMES = ("experiment", "study", "survey")


def _list_lines(rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    """KEY, KIND, STATUS, STARTED, NAME as aligned columns, the name wrapped to fit ``WIDTH``."""
    import textwrap

    from abtest.report_text import WIDTH  # the one terminal width (``abtest analyze`` keeps it too)

    header = ("key", "kind", "status", "started", "name")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    indent = sum(widths) + 2 * len(widths)
    room = WIDTH - indent
    out = []
    for cells in [header, *rows]:
        lead = "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  "
        if room >= 16:
            name = textwrap.wrap(cells[4], room) or [""]
            out += [lead + name[0], *(" " * indent + more for more in name[1:])]
        else:  # very long keys: the name on lines of its own
            out += [lead.rstrip(), *textwrap.wrap(cells[4], WIDTH, initial_indent="    ", subsequent_indent="    ")]
    return [line.rstrip() for line in out]


@main.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only tests in this state (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KIND_NAMES), help="Only this kind of test (repeatable).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: a table for a terminal; json: one object per test.")
def list_tests(statuses: tuple[str, ...], kinds: tuple[str, ...], output: str) -> None:
    """List the stored experiments and studies, oldest first: key, kind, status, started, name."""
    import json

    from abtest import pipeline
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        rows = [row for row, _definition in pipeline.list_all(session, statuses or None, kinds or None)]
    if output == "json":
        stamp = lambda value: value.isoformat() if value else None  # noqa: E731
        click.echo(json.dumps([{"key": r.key, "kind": r.kind, "status": r.status, "name": r.name,
                                "created_at": stamp(r.created_at), "started_at": stamp(r.started_at),
                                "stopped_at": stamp(r.stopped_at), "archived_at": stamp(r.archived_at)}
                               for r in rows], indent=2))
        return
    if not rows:
        click.echo("no tests match" if statuses or kinds else
                   "no tests yet: define them as TOML files and load them with `abtest sync experiments/`")
        return
    for line in _list_lines([(r.key, r.kind, r.status, r.started_at.strftime("%Y-%m-%d") if r.started_at else "-",
                              r.name) for r in rows]):
        click.echo(line)


def _move(key: str, status: str) -> None:
    """Move test KEY to ``status`` through the pipeline; a refused move raises (exit 1, the reason)."""
    from abtest import pipeline
    from abtest.db import session_scope
    from abtest.kinds import KINDS
    from abtest.store.registry import get_row

    _settings, engine = open_database()
    with session_scope(engine) as session:
        before = get_row(session, key).status
        row = pipeline.transition(session, key, status)
        noun = KINDS[row.kind].noun
    if before == status:
        click.echo(f"{noun} {key} is already {status}; nothing changed")
    else:
        click.echo(f"{noun} {key}: {before} -> {status}")


@main.command()
@click.argument("key")
def start(key: str) -> None:
    """Launch test KEY (draft -> running): visitors are assigned (a study's participant link opens)."""
    _move(key, "running")


@main.command()
@click.argument("key")
def stop(key: str) -> None:
    """Stop test KEY (running -> stopped): nobody new is assigned and its results are final."""
    _move(key, "stopped")


@main.command()
@click.argument("key")
def archive(key: str) -> None:
    """Archive test KEY (a draft or a stopped test); an archived test stays archived."""
    _move(key, "archived")


@main.command()
@click.option("--baseline", type=float, help="Baseline conversion rate, e.g. 0.10 (proportions).")
@click.option("--sd", type=float, help="Standard deviation of the metric (means) instead of --baseline.")
@click.option("--mde", type=float, required=True, help="Smallest effect worth detecting, absolute (0.02 = 2 points).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="False-positive rate.")
@click.option("--power", "power_", type=float, default=0.8, show_default=True, help="Chance to detect the effect.")
@click.option("--variants", type=int, default=2, show_default=True, help="Number of variants incl. control.")
def power(baseline: float | None, sd: float | None, mde: float, alpha: float, power_: float, variants: int) -> None:
    """Units needed per variant to detect an effect of --mde (with --baseline or --sd)."""
    from abtest.stats.power import sample_size_means, sample_size_proportions

    if (baseline is None) == (sd is None):
        raise click.UsageError("give exactly one of --baseline (conversion rate) or --sd (mean metric)")
    if baseline is not None:
        size = sample_size_proportions(baseline, mde, alpha=alpha, power=power_, variants=variants)
    else:
        assert sd is not None
        size = sample_size_means(sd, mde, alpha=alpha, power=power_, variants=variants)
    click.echo(f"{size.n_per_variant} units per variant ({size.n_total:,} in all)")
    click.echo(f"method: {size.method}; alpha per comparison {size.alpha_per_comparison:.4g}, power {size.power:g}")


@main.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.option("--public", is_flag=True, help="A public key (pk_…) for the snippet: reads running experiments, writes events.")
@click.option("--name", default="", help="A label to recognise the token by.")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="With --public: a web origin (https://shop.example) allowed to use the key from a browser; "
                   "repeat for more. Default: any origin.")
def token_create(public: bool, name: str, origins: tuple[str, ...]) -> None:
    """Print a new API token as the last line: secret (sk_…, admin API) unless --public."""
    from abtest.accounts import create_token
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        new = create_token(session, "public" if public else "secret", name, origins)
    kind = "public key" if public else "secret token"
    where = f" for {', '.join(new.token.origins)}" if new.token.origins else ""
    click.echo(f"Created {kind} {name or '(unnamed)'}{where}; it is shown only now, store it safely:")
    click.echo(new.secret)


@token.command("list")
def token_list() -> None:
    """List tokens by prefix, kind, name and state (never the token itself)."""
    from abtest.accounts import list_tokens
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        for row in list_tokens(session):
            state = "revoked" if row.revoked_at else "active"
            where = f"  origins: {' '.join(row.origins)}" if row.origins else ""
            click.echo(f"{row.prefix}…  {row.kind:6}  {state:7}  {row.name}{where}")


@token.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke the token starting with PREFIX (its first 10 characters, as `token list` shows)."""
    from abtest.accounts import revoke_token
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        row = revoke_token(session, prefix)
    click.echo(f"revoked {row.prefix}… ({row.kind}) {row.name}")


# The `user` commands live in their own module (designer logins and their sessions).
from abtest.cli_users import user  # noqa: E402  (after main's helpers, which it uses lazily)

main.add_command(user)


@main.group()
def units() -> None:
    """A unit's stored data: erase it on request (GDPR Art. 17)."""


@units.command("forget")
@click.argument("unit")
@click.option("--experiment", metavar="KEY", help="Only in this test (default: in every test).")
def units_forget(unit: str, experiment: str | None) -> None:
    """Delete every event, study progress and rollup row of UNIT, in one transaction, and print
    the rows deleted per table as JSON. The audit log of each test touched records the erasure,
    without the unit id."""
    import json

    from abtest.store.erasure import forget

    _settings, engine = open_database()
    click.echo(json.dumps(forget(engine, unit, experiment, actor="abtest units forget").to_dict(), indent=2))


# The `db` and `events` commands (the schema, rollups, moving events) live in their own module.
from abtest.cli_storage import db, events  # noqa: E402

main.add_command(db)
main.add_command(events)
