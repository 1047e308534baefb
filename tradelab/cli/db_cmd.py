"""``tradelab db upgrade`` and ``tradelab db current``: the store's schema."""

from __future__ import annotations

from typing import Any

import typer

from tradelab.cli._app import app, fail, settings

db_app = typer.Typer(help="Create, migrate and inspect the trading database.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

URL_HELP = "SQLAlchemy URL (default: [store] url, else sqlite:///var/tradelab.db under home)"


def default_url(cfg: Any) -> str:
    """The configured store URL, relative SQLite paths resolved against ``home``."""
    from tradelab.store import store_url

    return store_url(cfg).render_as_string(hide_password=False)


def _open(url: str | None) -> Any:
    from tradelab.store import open_store

    raw = url or default_url(settings())
    try:
        # A relative SQLite path on the command line means relative to the cwd. Not
        # migrated here: `db upgrade|current|downgrade` are what manage the schema.
        return open_store(None, raw, upgrade=False)
    except Exception as exc:  # bad URL or missing driver
        fail(_safe(exc, raw))


def _safe(exc: BaseException, url: str) -> str:
    """An error message that cannot leak the URL's password."""
    from tradelab.store import mask_url
    from tradelab.store.store import url_password

    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    password = url_password(url)
    if password:
        text = text.replace(str(password), "***")
    return f"{mask_url(url) if password is not None else url}: {text}"


@db_app.command("upgrade")
def upgrade(url: str | None = typer.Option(None, "--url", help=URL_HELP),
            revision: str = typer.Option("head", help="target revision")) -> None:
    """Create the database schema or migrate it to the newest revision."""
    from tradelab.store import mask_url

    store = _open(url)
    try:
        store.upgrade(revision)
        typer.echo(f"{mask_url(store.url)}: at revision {store.current_revision()}")
    except Exception as exc:
        fail(_safe(exc, store.url.render_as_string(hide_password=False)))
    finally:
        store.close()


@db_app.command("current")
def current(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Show the database's schema revision; exit 1 if it is not at head."""
    from tradelab.store import mask_url

    store = _open(url)
    try:
        rev, head = store.current_revision(), store.head_revision()
    except Exception as exc:
        fail(_safe(exc, store.url.render_as_string(hide_password=False)))
    finally:
        store.close()
    where = mask_url(store.url)
    if rev == head:
        typer.echo(f"{where}: {rev} (head)")
        return
    typer.echo(f"{where}: {rev or '(empty)'}; head is {head}: run `tradelab db upgrade`")
    raise typer.Exit(1)
