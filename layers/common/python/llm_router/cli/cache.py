"""`llm-router cache stats|purge [--tenant T] [--route R]`: what the response cache holds, and emptying it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from llm_router.cli.common import add_target_options, apply_target, print_json, print_table
from llm_router.settings import get_settings

if TYPE_CHECKING:
    from llm_router.stores.response_cache import DynamoResponseCache


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("cache", help="show or purge the response cache (State table)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = sub.add_parser("stats", help="entries and bytes held, per tenant and route")
    stats.add_argument("--json", action="store_true")
    purge = sub.add_parser("purge", help="delete cached answers (all, or of one tenant and/or route)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for action, handler in ((stats, stats_), (purge, purge_)):
        action.add_argument("--tenant", help="only this tenant's entries")
        action.add_argument("--route", help="only this route's entries (`pinned`: models named directly)")
        add_target_options(action)
        action.set_defaults(handler=handler)


def _cache(args: argparse.Namespace) -> DynamoResponseCache:
    from llm_router.stores.response_cache import DynamoResponseCache

    apply_target(args)
    return DynamoResponseCache(get_settings().state_table_name)


def stats_(args: argparse.Namespace) -> int:
    cache = _cache(args)
    stats = cache.stats(tenant=args.tenant, route=args.route)
    if args.json:
        print_json(
            {
                "entries": stats.entries,
                "expired": stats.expired,
                "bytes": stats.bytes,
                "tenants": dict(stats.by_tenant),
                "routes": dict(stats.by_route),
            }
        )
        return 0
    rows = [{"tenant": t, "entries": n} for t, n in sorted(stats.by_tenant.items())]
    print_table(rows, ["tenant", "entries"])
    rows = [{"route": r, "entries": n} for r, n in sorted(stats.by_route.items())]
    print_table(rows, ["route", "entries"])
    print(f"{stats.entries} cached answer(s), {stats.bytes} bytes; {stats.expired} expired, not yet deleted")
    return 0


def purge_(args: argparse.Namespace) -> int:
    cache = _cache(args)
    scope = " and ".join(f"{k} {v!r}" for k, v in (("tenant", args.tenant), ("route", args.route)) if v) or "everyone"
    if not args.yes:
        answer = input(f"Delete the cached answers of {scope}? [y/N] ")
        if answer.strip().lower() != "y":
            print("nothing deleted")
            return 1
    deleted = cache.purge(tenant=args.tenant, route=args.route)
    print(f"{deleted} cached answer(s) deleted ({scope})")
    return 0
