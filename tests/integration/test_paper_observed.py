"""`tradelab paper` announces fills and risk alerts through the configured channels."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.unit.notify.endpoints import HttpReceiver
from tradelab.cli import app
from tradelab.monitor.logging import configure_logging
from tradelab.store import Store


def test_paper_run_notifies_fills_to_a_local_endpoint(environ: dict[str, str],
                                                      tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'observed.db'}"
    receiver = HttpReceiver()
    env = {**environ, "TRADELAB__STORE__URL": url, "TRADELAB__ENGINE__ACCOUNT": "observed",
           "TRADELAB__NOTIFY__CHANNELS__DESK__URL": receiver.url("desk"),
           "TRADELAB__NOTIFY__CHANNELS__DESK__MIN_SEVERITY": "info"}
    try:
        res = CliRunner().invoke(app, ["paper", "sma_cross", "--symbol", "SPX", "--start",
                                       "2016-01-01", "--end", "2016-12-31", "--no-progress"],
                                 env=env, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        fills = Store(url).fills("observed")
        assert fills
        got = receiver.wait_for(len(fills))
        assert all(r["path"] == "/desk" for r in got)
        # one message per fill, each naming its symbol; deliveries are stored too
        assert sum("SPX" in (r.get("title", "") + r.get("message", "")) for r in got) == len(fills)
    finally:
        receiver.close()
        configure_logging("WARNING")
