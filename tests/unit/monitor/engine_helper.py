"""A small real engine run (one year of SPX, no store) for the monitoring tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.engine.loop import Engine
from tradelab.execution import Execution
from tradelab.risk.rules import RiskLimits


def make_engine(spx: pd.DataFrame, *, max_position: str | None = None, max_drawdown: float | None = None,
                year: str = "2018") -> Engine:
    from tradelab.app import build_registry
    from tradelab.config import load_config

    strategy = build_registry(load_config(environ={})).create("sma_cross", fast=5, slow=20)
    limits = RiskLimits(max_position=Decimal(max_position) if max_position else None,
                        max_drawdown=max_drawdown)
    bars = spx.loc[year]
    return assemble_engine([(strategy, "SPX")], ReplayFeed(bars, "SPX"), Execution(),
                  config=EngineConfig(account="paper"), limits=limits)


def run(engine: Engine) -> Any:
    return engine.run()
