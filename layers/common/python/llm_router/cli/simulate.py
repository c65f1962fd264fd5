"""`llm-router simulate down|up`: inject failures into simulated models (demos and drills in local mode)."""

from __future__ import annotations

import argparse

from llm_router.cli.common import CliError, add_target_options, apply_target
from llm_router.schemas.catalog import ModelSpec, Simulation
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("simulate", help="make simulated models fail or recover (local drills)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    down = sub.add_parser("down", help="make models fail (default: all)")
    down.add_argument("models", nargs="*")
    down.add_argument(
        "--failure",
        default="server_error",
        choices=["server_error", "throttle", "timeout", "connection_error"],
        help="how they fail (default server_error)",
    )
    down.add_argument("--rate", type=float, default=1.0, help="share of calls that fail (default 1.0)")
    up = sub.add_parser("up", help="bring models back (default: all)")
    up.add_argument("models", nargs="*")
    for action in (down, up):
        add_target_options(action)
        action.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    apply_target(args)
    admin = ConfigAdmin(get_settings().config_table_name)
    entries = {str(e["id"]): e for e in admin.entries("model")}
    names = args.models or sorted(entries)
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise CliError(f"unknown models: {', '.join(unknown)}")
    for name in names:
        spec = ModelSpec.model_validate(entries[name])
        current = spec.simulate or Simulation()
        if args.action == "down":
            simulate = current.model_copy(update={"failure": args.failure, "failure_rate": args.rate})
        else:
            simulate = current.model_copy(update={"failure": "none", "failure_rate": 1.0})
        admin.put("model", spec.model_copy(update={"simulate": simulate}))
        print(f"{name}: {'failing with ' + args.failure if args.action == 'down' else 'healthy'}")
    print(f"takes effect within RULES_TTL_SECONDS ({get_settings().rules_ttl_seconds:g} s)")
    return 0
