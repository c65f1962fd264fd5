"""`llm-router usage`: spend, baseline, savings and requests per tenant, model and route (State table counters)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table
from llm_router.schemas.tenants import UsageAmounts
from llm_router.settings import get_settings
from llm_router.stores.usage_store import UsageReport, UsageStore

NOTE = "Costs are estimates from list prices and reported tokens, not the AWS bill."
# Table columns and the report fields they show (the JSON keeps the full names).
COLUMNS = {
    "requests": "requests",
    "cost_usd": "cost_usd",
    "baseline_usd": "baseline_cost_usd",
    "saved_usd": "saved_usd",
    "saved_%": "saved_pct",
    "in_tokens": "input_tokens",
    "out_tokens": "output_tokens",
}
MONEY = ("cost_usd", "baseline_usd", "saved_usd")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("usage", help="spend, savings and requests per tenant, model and route")
    p.add_argument("--tenant", help="one tenant only (default: every tenant with usage)")
    p.add_argument(
        "--since",
        default="7d",
        help="Nd (the last N UTC days, today included) or a date YYYY-MM-DD (default: 7d)",
    )
    p.add_argument("--json", action="store_true")
    add_target_options(p)
    p.set_defaults(handler=run)


def since_date(text: str, today: date) -> date:
    """The first UTC day of a report: `7d` is today and the six days before; a date is taken as is."""
    match = re.fullmatch(r"(\d+)d", text.strip())
    if match:
        days = int(match.group(1))
        if days < 1:
            raise CliError("--since needs at least 1d (today)")
        return today - timedelta(days=days - 1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since wants Nd (e.g. 7d) or a date YYYY-MM-DD, got {text!r}") from None


def _amounts(amounts: UsageAmounts) -> dict[str, Any]:
    return amounts.as_dict()


def as_json(report: UsageReport) -> dict[str, Any]:
    """The report as plain data (what `--json` prints)."""
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "note": NOTE,
        "total": _amounts(report.total),
        "tenants": [{"tenant": t, **_amounts(a)} for t, a in sorted(report.tenants.items())],
        "models": [{"tenant": t, "model": m, **_amounts(a)} for (t, m), a in sorted(report.models.items())],
        "routes": [{"tenant": t, "route": r, **_amounts(a)} for (t, r), a in sorted(report.routes.items())],
    }


def _table(rows: list[dict[str, Any]], keys: list[str]) -> None:
    shown = []
    for row in rows:
        cells = {key: row[key] for key in keys}
        cells.update({column: row[field] for column, field in COLUMNS.items()})
        cells.update({column: f"{cells[column]:.6f}" for column in MONEY})
        shown.append(cells)
    print_table(shown, [*keys, *COLUMNS])


def run(args: argparse.Namespace) -> int:
    apply_target(args)
    today = datetime.now(UTC).date()
    since = since_date(args.since, today)
    if since > today:
        raise CliError(f"--since {since} is in the future")
    report = UsageStore(get_settings().state_table_name).report(since, today, tenant=args.tenant)
    data = as_json(report)
    if args.json:
        print_json(data)
        return 0
    who = f"tenant {args.tenant}" if args.tenant else "all tenants"
    print(f"Usage of {who}, {since} to {today} (UTC days). {NOTE}")
    if not report.tenants:
        print("no usage recorded in that period")
        return 0
    print()
    _table(data["tenants"], ["tenant"])
    print()
    _table(data["models"], ["tenant", "model"])
    print()
    _table(data["routes"], ["tenant", "route"])
    return 0
