"""Pre-trade risk: pure rule functions, the RiskManager and the kill switch."""

from tradelab.risk.manager import KillSwitch, RiskManager
from tradelab.risk.rules import RULES, RiskContext, RiskLimits

__all__ = ["RULES", "KillSwitch", "RiskContext", "RiskLimits", "RiskManager"]
