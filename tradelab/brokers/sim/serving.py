"""Running a venue simulator as a process: serve until interrupted or asked to restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tradelab.brokers.sim.faults import RESTART_EXIT_CODE


def serve_app(make_app: Callable[[Callable[[], None]], Any], *, host: str, port: int,
              ready: Callable[[int], None] | None = None,
              before_exit: Callable[[], None] | None = None) -> int:
    """Serve the aiohttp app ``make_app(restart)`` builds on ``host:port``; the exit status.

    ``restart`` (given to the app: the ``restart_after`` fault, ``POST /_sim/restart``)
    stops serving with :data:`~tradelab.brokers.sim.faults.RESTART_EXIT_CODE`, for a
    supervisor to start the process again on the same state file; an interrupt
    returns 0. ``ready(port)`` is called once listening, ``before_exit()`` before the
    server shuts down.
    """
    from aiohttp import web

    async def main() -> int:
        stop = asyncio.Event()
        code = 0

        def restart() -> None:
            nonlocal code
            code = RESTART_EXIT_CODE
            stop.set()

        runner = web.AppRunner(make_app(restart), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        if ready is not None:
            ready(int(runner.addresses[0][1]))
        try:
            await stop.wait()
        finally:
            if before_exit is not None:
                before_exit()
            await runner.cleanup()
        return code

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


__all__ = ["serve_app"]
