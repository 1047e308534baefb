"""``tradelab users add|list|disable|enable`` and ``tradelab apikeys create|list|revoke``.

Passwords are read from a hidden prompt or, for scripts, from stdin
(``--password-stdin``); never from an argument, where ``ps`` and shell
history would see them. A new API key is printed once, to stdout only.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

import typer

from tradelab.cli._app import app, emit_json, fail

users_app = typer.Typer(help="Manage API and dashboard users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="apikeys")

URL_HELP = "SQLAlchemy URL of the store (default: store.url)"


def load_settings() -> Any:
    """Settings (files and ``TRADELAB__*`` from the environment), or exit 2 naming each problem."""
    from tradelab.config import load_config
    from tradelab.errors import ConfigError

    try:
        return load_config()
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None


def open_store(url: str | None, cfg: Any) -> Any:
    """The store at ``url`` (or the configured one), migrated to head."""
    from tradelab.cli.db_cmd import _safe
    from tradelab.store import open_store as open_at
    from tradelab.store import store_url

    try:
        return open_at(cfg, url)
    except Exception as exc:
        fail(_safe(exc, store_url(cfg, url).render_as_string(hide_password=False)))


def service(url: str | None) -> Any:
    """An :class:`AuthService` for local administration."""
    from tradelab.auth import AuthService, auth_settings, generate_secret

    cfg = load_settings()
    auth = auth_settings(cfg)
    # User and key management never signs tokens: without a configured
    # secret a throwaway one lets the service start.
    secret = auth.jwt_secret.get_secret_value() if auth.jwt_secret else generate_secret()
    return AuthService(open_store(url, cfg), auth, secret=secret)


def operator() -> str:
    """How the audit log names a local CLI operator."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            fail("--password-stdin: nothing on stdin")
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _run(fn: Any) -> Any:
    from tradelab.auth import AuthError

    try:
        return fn()
    except AuthError as exc:
        fail(str(exc))


@users_app.command("add")
def users_add(username: str = typer.Argument(..., help="lower-case letters, digits, _.@-"),
              role: str = typer.Option("viewer", help="viewer | trader | admin"),
              password_stdin: bool = typer.Option(False, "--password-stdin",
                                                  help="read the password from stdin"),
              url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Add a user (password from a hidden prompt or --password-stdin)."""
    svc = service(url)
    password = read_password(password_stdin)
    user = _run(lambda: svc.add_user(username, password, role, actor=operator()))
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json"),
               url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """List users, their roles and status."""
    svc = service(url)
    rows = [{"username": u.username, "role": u.role, "disabled": u.disabled,
             "totp": u.totp_enabled, "created_at": u.created_at.isoformat()}
            for u in svc.users(operator())]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        flags = " ".join(f for f, on in (("disabled", r["disabled"]), ("totp", r["totp"])) if on)
        typer.echo(f"{r['username']:<24} {r['role']:<7} {flags}".rstrip())


@users_app.command("disable")
def users_disable(username: str, url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Disable a user and revoke their sessions at once."""
    svc = service(url)
    user = _run(lambda: svc.set_disabled(username, True, actor=operator()))
    typer.echo(f"disabled {user.username}")


@users_app.command("enable")
def users_enable(username: str, url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Re-enable a disabled user."""
    svc = service(url)
    user = _run(lambda: svc.set_disabled(username, False, actor=operator()))
    typer.echo(f"enabled {user.username}")


@keys_app.command("create")
def keys_create(user: str = typer.Option(..., "--user", help="owner of the key"),
                name: str = typer.Option(..., "--name", help="what the key is for"),
                role: str = typer.Option("viewer", help="viewer | trader | admin (at most the owner's)"),
                days: int | None = typer.Option(None, "--days",
                                                help="lifetime in days (default: auth.api_key_ttl_days)"),
                url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Create an API key; it is printed once (stdout) and stored only as a digest."""
    svc = service(url)
    key, rec = _run(lambda: svc.create_api_key(user, name, role, actor=operator(), ttl_days=days))
    typer.echo(f"created key {rec.prefix} for {rec.username} ({rec.role}), expires "
               f"{rec.expires_at:%Y-%m-%d}. Store it now, it is not shown again:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(user: str | None = typer.Option(None, "--user"),
              as_json: bool = typer.Option(False, "--json"),
              url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """List API keys (prefix, owner, role, expiry, last use; never the key)."""
    svc = service(url)
    keys = _run(lambda: svc.api_keys(operator(), user))
    rows = [{"prefix": k.prefix, "name": k.name, "owner": k.username, "role": k.role,
             "expires_at": k.expires_at.isoformat(),
             "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
             "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None}
            for k in keys]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        state = "revoked" if r["revoked_at"] else f"expires {r['expires_at'][:10]}"
        typer.echo(f"{r['prefix']}  {r['owner']:<16} {r['role']:<7} {state:<18} {r['name']}")


@keys_app.command("revoke")
def keys_revoke(prefix: str, url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Revoke an API key by its prefix."""
    svc = service(url)
    _run(lambda: svc.revoke_api_key(prefix, actor=operator()))
    typer.echo(f"revoked {prefix}")
