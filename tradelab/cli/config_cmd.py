"""``tradelab config check``."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, emit_json, settings

config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(as_json: bool = typer.Option(False, "--json", help="print JSON instead of TOML")) -> None:
    """Validate the configuration and print the effective values (secrets redacted)."""
    import tomli_w

    data = settings().redacted()
    if as_json:
        emit_json(data)
    else:
        typer.echo(tomli_w.dumps(_drop_none(data)).rstrip())
    typer.echo("config OK", err=True)


def _drop_none(d: dict) -> dict:  # TOML has no null
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}
