"""`llm-router experiments report ROUTE`: per split arm of a route, what its requests cost and how they were rated.

Read from the route's outcome records (routes with `learn.collect`). An arm is a rule's `split` arm (`rule#N`);
requests that no split rule decided are grouped by the rule (or strategy, or default) that did. For each:
requests, total and mean cost, the mean feedback score and the mean shadow score (the judge's grade of the answer
the caller got) with 95 % intervals. Arms of the same split rule are compared with the first arm: feedback and
shadow scores with Welch's t-test, and 0/1 feedback (thumbs) with the two-proportion z-test, at the 5 % level.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, time
from typing import Any

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table
from llm_router.ml.stats import compare, mean_interval
from llm_router.settings import get_settings
from llm_router.stores.outcome_store import OutcomeRecord, OutcomeStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("experiments", help="A/B reports from the outcomes of routes that learn")
    sub = p.add_subparsers(dest="experiments_command", required=True, metavar="COMMAND")
    report = sub.add_parser("report", help="per split arm: requests, cost, feedback and shadow scores, significance")
    report.add_argument("route", metavar="ROUTE", help="a route with learn.collect")
    report.add_argument(
        "--since", help="Nd (the last N UTC days, today included) or a date YYYY-MM-DD (default: every record kept)"
    )
    report.add_argument("--json", action="store_true")
    add_target_options(report)
    report.set_defaults(handler=run)


def arm_of(record: OutcomeRecord) -> str:
    return f"{record.rule}#{record.arm}" if record.arm is not None else record.rule


def _estimate(values: list[float]) -> dict[str, Any]:
    return mean_interval(values).as_dict()


def build_report(route: str, records: list[OutcomeRecord]) -> dict[str, Any]:
    """The report as plain data (what `--json` prints)."""
    groups: dict[str, list[OutcomeRecord]] = {}
    for record in records:
        groups.setdefault(arm_of(record), []).append(record)
    arms = []
    feedback: dict[str, list[float]] = {}
    shadow: dict[str, list[float]] = {}
    for name in sorted(groups):
        members = groups[name]
        feedback[name] = [r.feedback.score for r in members if r.feedback is not None]
        shadow[name] = [float(s) for r in members if (s := _shadow_score(r)) is not None]
        cost = sum(r.cost_usd for r in members)
        arms.append(
            {
                "arm": name,
                "rule": members[0].rule,
                "split_arm": members[0].arm,
                "requests": len(members),
                "cost_usd": round(cost, 10),
                "mean_cost_usd": round(cost / len(members), 10),
                "models": dict(Counter(r.model for r in members).most_common()),
                "feedback": _estimate(feedback[name]),
                "shadow": _estimate(shadow[name]),
            }
        )
    return {
        "route": route,
        "records": len(records),
        "since": datetime.fromtimestamp(records[0].created_at, UTC).isoformat() if records else None,
        "arms": arms,
        "comparisons": _comparisons(arms, feedback, shadow),
    }


def _shadow_score(record: OutcomeRecord) -> float | None:
    scores = (record.shadow or {}).get("scores") or {}
    value = scores.get(record.model)
    return float(value) if value is not None else None


def _comparisons(
    arms: list[dict[str, Any]], feedback: dict[str, list[float]], shadow: dict[str, list[float]]
) -> list[dict[str, Any]]:
    """Each arm of a split rule against the rule's first arm, on feedback and on shadow scores."""
    by_rule: dict[str, list[str]] = {}
    for arm in arms:
        if arm["split_arm"] is not None:
            by_rule.setdefault(arm["rule"], []).append(arm["arm"])
    out = []
    for rule, names in sorted(by_rule.items()):
        base, *others = sorted(names, key=lambda n: int(n.rpartition("#")[2]))
        for other in others:
            for metric, values in (("feedback", feedback), ("shadow", shadow)):
                result = compare(values[other], values[base])
                out.append({"rule": rule, "arm": other, "versus": base, "metric": metric, **result.as_dict()})
    return out


def _fmt(estimate: dict[str, Any]) -> str:
    if estimate["mean"] is None:
        return "-"
    low, high = estimate["ci95"]
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{estimate['mean']:.3f}{interval} n={estimate['n']}"


def since_datetime(text: str | None) -> datetime | None:
    if text is None:
        return None
    from llm_router.cli.usage import since_date

    today = datetime.now(UTC).date()
    day = since_date(text, today)
    if day > today:
        raise CliError(f"--since {day} is in the future")
    return datetime.combine(day, time(), tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    apply_target(args)
    settings = get_settings()
    store = OutcomeStore(settings.state_table_name, retention_days=settings.outcome_retention_days)
    data = build_report(args.route, store.records(args.route, since_datetime(args.since)))
    if args.json:
        print_json(data)
        return 0
    print(f"Route {args.route}: {data['records']} outcome records" + (f" since {args.since}" if args.since else ""))
    if not data["arms"]:
        print("no outcomes recorded (does the route say learn: {collect: true}?)")
        return 0
    rows = [
        {
            "arm": arm["arm"],
            "requests": arm["requests"],
            "cost_usd": f"{arm['cost_usd']:.6f}",
            "feedback (95% CI)": _fmt(arm["feedback"]),
            "shadow (95% CI)": _fmt(arm["shadow"]),
        }
        for arm in data["arms"]
    ]
    print()
    print_table(rows, ["arm", "requests", "cost_usd", "feedback (95% CI)", "shadow (95% CI)"])
    if data["comparisons"]:
        print()
    for c in data["comparisons"]:
        if c["p_value"] is None:
            print(f"{c['arm']} vs {c['versus']}, {c['metric']}: too few values to test")
            continue
        verdict = "significant" if c["significant"] else "not significant"
        print(
            f"{c['arm']} vs {c['versus']}, {c['metric']}: difference {c['difference']:+.3f} "
            f"({c['test']}, p={c['p_value']:.4f}): {verdict} at 5%"
        )
    return 0
