"""``tradelab notify summary``: send an account's daily summary through the configured channels."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer

from tradelab.cli._app import app, build_app, emit_json, fail

notify_app = typer.Typer(help="Notifications.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("summary")
def summary(
    account: str = typer.Option(None, help="account (default: [engine] account)"),
    day: str = typer.Option(None, help="UTC date YYYY-MM-DD (default: today)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the summary, send nothing"),
    timeout: float = typer.Option(30.0, help="seconds to wait for delivery"),
) -> None:
    """Send the daily summary (equity, day P&L, fills, risk events, kill switch) of an account.

    Schedule it like any job (e.g. after the close) or call it from cron.
    """
    from tradelab.notify.summary import daily_summary

    tl = build_app()
    name = account or tl.settings.engine.account
    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        fail(f"--day {day!r}: expected YYYY-MM-DD")
    try:
        context = daily_summary(tl.store, name, when)
    except KeyError as exc:
        fail(str(exc.args[0]))
    emit_json(context)
    if dry_run:
        return
    notifier = tl.notifier()
    try:
        sent = notifier.notify("daily_summary", context)
        delivered = notifier.flush(timeout)
    finally:
        notifier.close()
    typer.echo(f"daily summary queued to {sent} channel(s); "
               f"{'delivered' if delivered else 'NOT all delivered in time'}", err=True)
    if not delivered:
        raise typer.Exit(1)
