"""`llm-router adapt ROUTE | adapt rollback ROUTE | adapt list ROUTE`: adapt a route online, from its collected
outcomes, and manage the versions it serves.

One `adapt` parser serves both forms: cli/ml.py registers it with the offline form's options (`--data FILE`, a JSONL
of graded prompts) and adds the online form's from `add_online_arguments`; without `--data` its handler calls
`run_online`, where the first positional word picks the action: `rollback`, `list`, or a route id to adapt.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table

ACTIONS = ("rollback", "list")
# Options of the shared parser that only the offline form reads (their default is None).
OFFLINE_ONLY = ("weak", "strong", "out", "weights")
USAGE = (
    "llm-router adapt ROUTE [--dry-run] [--since WHEN] | adapt rollback ROUTE [--to vN|shipped] | "
    "adapt list ROUTE | adapt --data OUTCOMES.jsonl ... (offline)"
)


def add_online_arguments(parser: argparse.ArgumentParser) -> None:
    """The online form's arguments, on the one `adapt` parser that the offline form shares."""
    parser.add_argument(
        "words",
        nargs="*",
        metavar="ROUTE | rollback ROUTE | list ROUTE",
        help="online: the route to adapt from its collected outcomes, or rollback/list and a route",
    )
    parser.add_argument("--dry-run", action="store_true", help="online: fit and report, store nothing")
    parser.add_argument(
        "--since", help="online: only outcomes after this time, an ISO date/time or a number of days such as 30d"
    )
    parser.add_argument("--to", help="online rollback: the version to serve (vN), or `shipped`")
    add_target_options(parser)


def run_online(args: argparse.Namespace) -> int:
    """`adapt ROUTE`, `adapt rollback ROUTE`, `adapt list ROUTE`."""
    words = list(args.words or [])
    if not words:
        raise CliError(f"adapt needs a route, or --data for the offline form: {USAGE}")
    action, route = ("adapt", words[0]) if words[0] not in ACTIONS else (words[0], words[1] if len(words) > 1 else "")
    expected = 1 if action == "adapt" else 2
    if not route or len(words) != expected:
        raise CliError(f"unexpected arguments {' '.join(words)!r}: {USAGE}")
    if args.to is not None and action != "rollback":
        raise CliError("--to applies to `adapt rollback ROUTE` only")
    if (args.dry_run or args.since is not None) and action != "adapt":
        raise CliError("--dry-run and --since apply to `adapt ROUTE` only")
    offline = [f"--{name.replace('_', '-')}" for name in OFFLINE_ONLY if getattr(args, name, None) is not None]
    if offline:
        raise CliError(
            f"{', '.join(offline)} belong to the offline form (--data); online, the route's strategy names the models "
            "and its `learn` settings the target"
        )
    apply_target(args)
    from llm_router.settings import GatewaySettings

    settings = GatewaySettings.from_env()
    if action == "list":
        return _list(settings, route, as_json=getattr(args, "json", False))
    if action == "rollback":
        return _rollback(settings, route, args.to)
    return _adapt(
        settings,
        route,
        dry_run=args.dry_run,
        since=_since(args.since),
        as_json=getattr(args, "json", False),
        seed=getattr(args, "seed", 0),
    )


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    if text.endswith("d") and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(days=int(text[:-1]))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since wants an ISO date/time or a number of days such as 30d, got {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _adapt(settings: Any, route: str, *, dry_run: bool, since: datetime | None, as_json: bool, seed: int) -> int:
    from llm_router.adapting import CannotAdaptError
    from llm_router.wiring import build_adapter

    try:
        run = build_adapter(settings, seed=seed).run(route, dry_run=dry_run, since=since)
    except CannotAdaptError as exc:
        raise CliError(str(exc)) from None
    report = run.report()
    if as_json:
        print_json(report)
        return 0
    served = run.current or "the shipped model"
    if run.saved is not None:
        print(f"route {route}: promoted and activated {run.saved.version} (was {served})")
    elif run.promoted and dry_run:
        print(f"route {route}: would promote a new version (dry run: nothing stored; still {served})")
    else:
        print(f"route {route}: not promoted; still serving {served}")
    print(f"reason: {run.result.reason}")
    for key, value in run.result.report.items():
        print(f"{key}: {value}")
    return 0


def _list(settings: Any, route: str, *, as_json: bool) -> int:
    from llm_router.wiring import build_adaptation_store

    store = build_adaptation_store(settings)
    versions = store.versions(route)
    rows = [v.summary() for v in versions]
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        print(f"route {route} has no adaptation versions (it serves the shipped model)")
        return 0
    for row in rows:
        row["active"] = "*" if row["active"] else ""
    print_table(rows, ["version", "active", "weak", "strong", "threshold", "samples", "fitted_at", "error"])
    if store.held(route):
        served = store.active_version(route) or "the shipped model"
        print(f"held at {served} by a rollback: the scheduled adapt leaves it until `llm-router adapt {route}` runs")
    return 0


def _rollback(settings: Any, route: str, to: str | None) -> int:
    from llm_router.stores.adaptation_store import AdaptationError
    from llm_router.wiring import build_adaptation_store

    try:
        before, after = build_adaptation_store(settings).rollback(route, to)
    except AdaptationError as exc:
        raise CliError(str(exc)) from None
    print(
        f"route {route}: now serving {after or 'the shipped model'} (was {before}); "
        f"routers pick it up within their config cache TTL ({settings.rules_ttl_seconds:g} s). "
        f"The scheduled adapt leaves the route as it is until `llm-router adapt {route}` runs."
    )
    return 0
