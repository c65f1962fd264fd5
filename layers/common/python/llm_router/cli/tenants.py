"""`llm-router tenants set|list|delete`: per-tenant budgets (USD, per UTC day and month) and model allow-lists."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table
from llm_router.schemas.records import error_summary
from llm_router.schemas.tenants import TenantSpec
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_store import UsageStore

OFF = ("off", "none")
# Tells "not given" apart from "--daily-budget off" (which parses to None).
UNSET: Any = object()
COLUMNS = [
    "tenant",
    "daily_budget",
    "spent_today",
    "monthly_budget",
    "spent_month",
    "models",
    "on_exceed",
    "soft_limit",
]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("tenants", help="set or list per-tenant budgets and allowed models")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    st = sub.add_parser("set", help="create or change a tenant's settings (options not given stay as they are)")
    st.add_argument("tenant", help="the tenant of its API keys (`llm-router keys list`)")
    st.add_argument(
        "--daily-budget",
        type=_budget,
        default=UNSET,
        metavar="USD|off",
        help="refuse once the UTC day's spend reaches it",
    )
    st.add_argument(
        "--monthly-budget",
        type=_budget,
        default=UNSET,
        metavar="USD|off",
        help="refuse once the month's spend reaches it",
    )
    st.add_argument("--models", metavar="M1,M2|all", help="only these catalog models may answer (all: no allow-list)")
    st.add_argument(
        "--on-exceed",
        choices=["refuse", "degrade", "route"],
        help="over the soft limit: degrade = cheapest capable model; refuse = nothing; route = the route's setting",
    )
    st.add_argument("--soft-limit", type=_fraction, metavar="FRACTION", help="share of a budget where degrading starts")
    st.add_argument("--description")
    st.set_defaults(handler=set_)

    ls = sub.add_parser("list", help="every tenant's settings and what it has spent today and this month")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_)

    rm = sub.add_parser("delete", help="remove a tenant's settings (no budgets or allow-list any more)")
    rm.add_argument("tenant")
    rm.set_defaults(handler=delete_)

    for action in (st, ls, rm):
        add_target_options(action)


def _budget(text: str) -> float | None:
    if text.lower() in OFF:
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a budget is an amount in USD or 'off', got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"a budget must be zero or more, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"the soft limit is a fraction above 0 and at most 1, got {text!r}")
    return value


def _store(args: argparse.Namespace) -> TenantStore:
    apply_target(args)
    return TenantStore(get_settings().config_table_name)


def set_(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        current = store.read(args.tenant)
    except ValidationError:
        current = None  # a broken item is replaced by what is given now
    data: dict[str, Any] = current.model_dump() if current else {"id": args.tenant}
    if args.daily_budget is not UNSET:
        data["daily_budget_usd"] = args.daily_budget
    if args.monthly_budget is not UNSET:
        data["monthly_budget_usd"] = args.monthly_budget
    if args.models is not None:
        data["models"] = _models(args.models)
    if args.on_exceed is not None:
        data["on_exceed"] = None if args.on_exceed == "route" else args.on_exceed
    if args.soft_limit is not None:
        data["soft_limit"] = args.soft_limit
    if args.description is not None:
        data["description"] = args.description
    try:
        spec = TenantSpec.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"invalid tenant settings: {error_summary(exc)}") from None
    store.put(spec)
    print(f"{'updated' if current else 'created'} tenant {spec.id}: {_summary(spec)}")
    return 0


def _models(text: str) -> tuple[str, ...] | None:
    if text.strip().lower() == "all":
        return None
    names = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    known = ConfigAdmin(get_settings().config_table_name).known_models()
    unknown = [m for m in names if m not in known]
    if unknown:
        raise CliError(f"unknown model(s): {', '.join(unknown)} (the catalog has: {', '.join(sorted(known))})")
    return names


def _summary(spec: TenantSpec) -> str:
    parts = [
        f"daily budget {_usd(spec.daily_budget_usd)}",
        f"monthly budget {_usd(spec.monthly_budget_usd)}",
        f"models {','.join(spec.models) if spec.models is not None else 'all'}",
        f"past {spec.soft_limit:.0%} of a budget: {spec.on_exceed or 'as the route says (refuse unless it degrades)'}",
    ]
    return "; ".join(parts)


def _usd(value: float | None) -> str:
    return "none" if value is None else f"${_plain(value)}"


def _plain(value: Any) -> str | None:
    """USD without exponent or trailing zeros (0.000001, not 1e-06)."""
    return None if value is None else f"{float(value):.9f}".rstrip("0").rstrip(".")


def list_(args: argparse.Namespace) -> int:
    specs = _store(args).all()
    usage = UsageStore(get_settings().state_table_name)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        spend = usage.spend(spec.id, now)
        rows.append(
            {
                "tenant": spec.id,
                "daily_budget": spec.daily_budget_usd,
                "spent_today": round(spend.day_usd or 0.0, 9),
                "monthly_budget": spec.monthly_budget_usd,
                "spent_month": round(spend.month_usd or 0.0, 9),
                "models": ",".join(spec.models) if spec.models is not None else "all",
                "on_exceed": spec.on_exceed or "route",
                "soft_limit": spec.soft_limit,
            }
        )
    if args.json:
        print_json(rows)
    elif rows:
        money = ("daily_budget", "spent_today", "monthly_budget", "spent_month")
        print_table([{k: _plain(v) if k in money else v for k, v in row.items()} for row in rows], COLUMNS)
    else:
        print("no tenant settings: every tenant may use every model without a budget")
    return 0


def delete_(args: argparse.Namespace) -> int:
    if not _store(args).delete(args.tenant):
        raise CliError(f"no settings for tenant {args.tenant!r}")
    print(f"deleted the settings of tenant {args.tenant}")
    return 0
