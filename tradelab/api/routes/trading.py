"""Read-only trading state from the store: accounts, positions, orders, fills, equity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tradelab.api.deps import Svc, Viewer
from tradelab.api.routes._common import AUTHED, R404, last
from tradelab.api.schemas import (
    AccountDetail,
    AccountOut,
    EquityOut,
    FillOut,
    KillSwitchOut,
    OrderOut,
    PositionOut,
)
from tradelab.store.auth_repo import accounts as list_accounts
from tradelab.store.records import AccountRecord

router = APIRouter(tags=["trading"], responses={**AUTHED, **R404})

Account = Annotated[str, Query(min_length=1, max_length=100, description="account name",
                               examples=["paper"])]
RunId = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this run")]
Limit = Annotated[int, Query(ge=1, le=5000, description="most recent N")]


def _account(a: AccountRecord) -> AccountOut:
    return AccountOut(name=a.name, currency=a.currency, initial_cash=a.initial_cash, cash=a.cash)


@router.get("/accounts", response_model=list[AccountOut], summary="Trading accounts")
def accounts(svc: Svc, _: Viewer) -> list[AccountOut]:
    return [_account(a) for a in list_accounts(svc.store)]


@router.get("/accounts/{account}", response_model=AccountDetail,
            summary="One account: cash, last equity, kill switch, counts")
def account(account: str, svc: Svc, _: Viewer) -> AccountDetail:
    state = svc.store.account_state(account)
    eq = state.last_equity
    return AccountDetail(
        **_account(state.account).model_dump(), open_orders=len(state.open_orders),
        positions=sum(1 for p in state.positions if p.quantity != 0),
        kill_switch=KillSwitchOut.model_validate(state.kill_switch, from_attributes=True),
        last_equity=EquityOut.model_validate(eq, from_attributes=True) if eq else None)


@router.get("/positions", response_model=list[PositionOut], summary="Positions by symbol")
def positions(svc: Svc, _: Viewer, account: Account = "paper",
              include_flat: bool = False) -> list[PositionOut]:
    return [PositionOut.model_validate(p, from_attributes=True)
            for p in svc.store.positions(account, include_flat=include_flat)]


@router.get("/orders", response_model=list[OrderOut], summary="Orders, oldest first")
def orders(svc: Svc, _: Viewer, account: Account = "paper", run_id: RunId = None,
           open_only: bool = False, limit: Limit = 500) -> list[OrderOut]:
    rows = svc.store.open_orders(account) if open_only else svc.store.orders(account, run_id)
    if open_only and run_id is not None:
        rows = [o for o in rows if o.run_id == run_id]
    return [OrderOut.model_validate(o, from_attributes=True) for o in last(rows, limit)]


@router.get("/fills", response_model=list[FillOut], summary="Fills in execution order")
def fills(svc: Svc, _: Viewer, account: Account = "paper", run_id: RunId = None,
          limit: Limit = 500) -> list[FillOut]:
    return [FillOut.model_validate(f, from_attributes=True)
            for f in last(svc.store.fills(account, run_id), limit)]


@router.get("/equity", response_model=list[EquityOut], summary="Equity snapshots in time order")
def equity(svc: Svc, _: Viewer, account: Account = "paper", run_id: RunId = None,
           limit: Limit = 1000) -> list[EquityOut]:
    return [EquityOut.model_validate(e, from_attributes=True)
            for e in last(svc.store.equity_curve(account, run_id), limit)]
