"""``abtest user …``: designer logins. Passwords are prompted twice without echo, or read from
standard input for scripts; a new password ends every session logged in with the old one."""

from __future__ import annotations

import sys

import click


@click.group()
def user() -> None:
    """Manage designer logins."""


@user.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
def user_create(email: str, password_stdin: bool) -> None:
    """Create a designer login for EMAIL (password prompted twice, or read from stdin)."""
    from abtest.accounts import create_user
    from abtest.cli_database import open_database
    from abtest.db import session_scope

    password = _read_password(password_stdin)
    _settings, engine = open_database()
    with session_scope(engine) as session:
        created = create_user(session, email, password)
    click.echo(f"created designer login {created.email}")


def _read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """One line of stdin, or typed twice without echo (a typo would otherwise lock the user out)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@user.command("list")
def user_list() -> None:
    """List designer logins: email and when each was created (never a password)."""
    from abtest.accounts import list_users
    from abtest.cli_database import open_database
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        rows = [(row.email, row.created_at) for row in list_users(session)]
    if not rows:
        click.echo("no designer logins yet: create one with `abtest user create EMAIL`")
        return
    width = max(len(email) for email, _created in rows)
    for email, created in rows:
        click.echo(f"{email.ljust(width)}  created {created:%Y-%m-%d %H:%M} UTC")


@user.command("passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input instead of prompting.")
def user_passwd(email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL; every session logged in with the old one ends."""
    from abtest.accounts import get_user, set_password
    from abtest.cli_database import open_database
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        get_user(session, email)  # an unknown email fails before anyone types a password
    password = _read_password(password_stdin, "New password")
    with session_scope(engine) as session:
        changed = set_password(session, email, password)
    click.echo(f"new password set for {changed.email}; its open sessions have ended")


@user.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(email: str, yes: bool) -> None:
    """Delete the designer login EMAIL (its sessions end; the audit log keeps its email)."""
    from abtest.accounts import delete_user, get_user
    from abtest.cli_database import open_database
    from abtest.db import session_scope

    _settings, engine = open_database()
    with session_scope(engine) as session:
        found = get_user(session, email).email
    if not yes:
        click.confirm(f"Delete the designer login {found}?", abort=True)
    with session_scope(engine) as session:
        delete_user(session, email)
    click.echo(f"deleted designer login {found}")
