"""`tradelab risk` on an account the store does not hold: exit 2 naming the account, the
accounts there are and how one comes to be; nothing written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradelab.cli import app
from tradelab.store import Store


@pytest.mark.parametrize("command", [["status"], ["halt"], ["resume"]])
def test_an_unknown_account_names_the_known_ones(tmp_path: Path, command: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(db)
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("live", Decimal(1))
        tx.ensure_account("paper", Decimal(1))
    res = CliRunner().invoke(app, ["risk", *command, "--account", "papr", "--db", db])
    assert res.exit_code == 2
    line, = res.stderr.strip().splitlines()
    assert "unknown account 'papr'" in line and "accounts: live, paper." in line
    assert store.account_names() == ["live", "paper"]
    assert not store.kill_switch("paper").engaged


def test_a_known_account_reports_its_state(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(db)
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal(1))
    assert CliRunner().invoke(app, ["risk", "halt", "--account", "paper", "--db", db]).exit_code == 0
    assert store.kill_switch("paper").engaged
