"""``tradelab replay-server``: historical bars served as a live websocket feed."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, build_app, fail
from tradelab.errors import TradelabError


@app.command("replay-server")
def replay_server(
    symbol: list[str] = typer.Option(None, "--symbol", "-s",
                                     help="symbol, repeatable (default [data] default_symbol)"),
    source: str = typer.Option(None, help="data source (default [data])"),
    start: str = typer.Option(None, help="first bar date"),
    end: str = typer.Option(None, help="last bar date"),
    interval: str = typer.Option("1d", help="bar interval"),
    speed: str = typer.Option("max", help="'max' or bars per second"),
    mode: str = typer.Option("replay", help="replay (honours 'since') or live (ignores it)"),
    host: str = typer.Option("127.0.0.1", help="listen address (loopback by default)"),
    port: int = typer.Option(8765, help="listen port (0: any free port)"),
    heartbeat: float = typer.Option(1.0, help="seconds of silence before a heartbeat"),
    ticks_per_bar: int = typer.Option(4, help="ticks per bar for clients that ask for ticks"),
    seed: int = typer.Option(0, help="fault-injection seed"),
    drop_after: list[int] = typer.Option(None, "--drop-after",
                                         help="close connection k after N bars (repeatable, in order)"),
    abort: bool = typer.Option(False, "--abort", help="drop by TCP reset, not a clean close"),
    gap_on_drop: int = typer.Option(0, help="live mode: bars missed per dropped connection"),
    stall_after: int = typer.Option(None, help="first connection goes silent after N bars"),
    stall_seconds: float = typer.Option(0.0, help="... for this many seconds"),
    duplicate: float = typer.Option(0.0, help="probability of sending a bar twice"),
    reorder: float = typer.Option(0.0, help="probability of swapping a bar with the next"),
    malformed: float = typer.Option(0.0, help="probability of a malformed message before a bar"),
) -> None:
    """Serve historical bars as JSON over websocket until interrupted (Ctrl-C)."""
    from tradelab.feeds.replay_server import Faults, ReplayServer

    speed_value: str | float = speed
    if speed != "max":
        try:
            speed_value = float(speed)
        except ValueError:
            fail(f"--speed {speed!r}: expected 'max' or a number of bars per second")
    if ticks_per_bar < 4:
        fail("--ticks-per-bar must be >= 4")
    app_ = build_app()
    symbols = symbol or [app_.settings.data.default_symbol]
    try:
        frames = {s: app_.bars(s, source=source, start=start, end=end, interval=interval)
                  for s in symbols}
        faults = Faults(seed=seed, drop_after=tuple(drop_after or ()), gap_on_drop=gap_on_drop,
                        abort=abort,
                        stall_after=stall_after, stall_seconds=stall_seconds,
                        duplicate=duplicate, reorder=reorder, malformed=malformed)
        server = ReplayServer(frames, speed=speed_value, mode=mode, faults=faults, host=host,
                              port=port, ticks_per_bar=ticks_per_bar, tick_interval=interval,
                              heartbeat=heartbeat)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))

    import asyncio  # (here: every command's start-up would pay for it)

    async def main() -> None:
        await server.start_async()
        typer.echo(f"replay server on {server.url}: {', '.join(symbols)} "
                   f"({sum(len(f) for f in frames.values())} bars, mode {mode}, speed {speed})",
                   err=True)
        await server.serve_forever()

    try:
        asyncio.run(main())
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    except KeyboardInterrupt:
        typer.echo("replay server stopped", err=True)
