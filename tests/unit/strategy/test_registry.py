from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradelab.errors import DuplicateStrategyError, TradelabError, UnknownStrategyError
from tradelab.strategy.registry import StrategyRegistry

PLUGIN = '''
from tradelab.strategy.base import Param, Signals, Strategy

class {cls}(Strategy):
    name = "{name}"
    n = Param(3, low=1)

    def signals(self, bars):
        up = bars["close"] > bars["open"]
        return Signals(up, ~up)
'''


def _write(folder: Path, file: str, cls: str, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(PLUGIN.format(cls=cls, name=name))
    return path


def test_shipped_strategies_are_discovered(project_root: Path) -> None:
    reg = StrategyRegistry.discover([project_root / "strategies"], entry_points=False)
    assert {"sma_cross", "rsi_reversion", "donchian_breakout"} <= set(reg.names())
    assert reg.create("sma_cross", fast=5, slow=20).params == {"fast": 5, "slow": 20}


def test_unknown_name_lists_the_available_ones(tmp_path: Path) -> None:
    _write(tmp_path, "alpha.py", "Alpha", "alpha")
    reg = StrategyRegistry.discover([tmp_path], entry_points=False)
    with pytest.raises(UnknownStrategyError) as err:
        reg.get("beta")
    assert str(err.value) == "unknown strategy 'beta'; available: alpha"


def test_a_near_miss_is_suggested(tmp_path: Path) -> None:
    _write(tmp_path, "alpha.py", "Alpha", "pairs_kopep")
    reg = StrategyRegistry.discover([tmp_path], entry_points=False)
    with pytest.raises(UnknownStrategyError) as err:
        reg.get("pairs_ko_pep")
    assert str(err.value) == ("unknown strategy 'pairs_ko_pep' (did you mean 'pairs_kopep'?); "
                              "available: pairs_kopep")


def test_duplicate_names_are_an_error_naming_both_files(tmp_path: Path) -> None:
    a = _write(tmp_path, "one.py", "One", "same")
    b = _write(tmp_path, "two.py", "Two", "same")
    with pytest.raises(DuplicateStrategyError) as err:
        StrategyRegistry.discover([tmp_path], entry_points=False)
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_a_broken_file_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(TradelabError, match=r"bad\.py: ModuleNotFoundError"):
        StrategyRegistry.discover([tmp_path], entry_points=False)


def test_entry_points_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed-distribution layout: a module plus its .dist-info with entry points.
    _write(tmp_path, "acme_strats.py", "Acme", "acme")
    info = tmp_path / "acme_strats-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strats\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [tradelab.strategies]
        acme = acme_strats:Acme
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = StrategyRegistry.discover([], entry_points=True)
    assert "acme" in reg
    assert "entry point acme" in reg.origin("acme")
    # the same name from a strategies/ folder collides with the plug-in
    other = tmp_path / "local"
    _write(other, "acme_local.py", "AcmeLocal", "acme")
    with pytest.raises(DuplicateStrategyError):
        StrategyRegistry.discover([other], entry_points=True)


def test_abstract_bases_in_a_plugin_file_are_not_registered(tmp_path: Path) -> None:
    (tmp_path / "family.py").write_text(
        "from tradelab.strategy.base import Strategy\n\n"
        "class Base(Strategy):\n    name = 'family_base'\n" + PLUGIN.format(cls="Child", name="child")
        .replace("(Strategy)", "(Base)"))
    reg = StrategyRegistry.discover([tmp_path], entry_points=False)
    assert reg.names() == ["child"]
