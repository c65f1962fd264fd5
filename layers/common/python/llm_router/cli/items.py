"""`llm-router rules|models|routes list|get|put|delete`: edit single Config table items, validated first."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table, read_document
from llm_router.schemas.records import ConfigKind, error_summary, validate_entry
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin, reference_errors

GROUPS: dict[str, ConfigKind] = {"rules": "rule", "models": "model", "routes": "route"}
COLUMNS = {
    "rule": ["id", "route", "priority", "enabled", "targets", "description"],
    "model": ["id", "provider", "model_id", "region", "in_per_mtok", "out_per_mtok", "capabilities"],
    "route": ["id", "default", "baseline", "strategy", "description"],
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for group, kind in GROUPS.items():
        p = subparsers.add_parser(group, help=f"list, show, write or delete {group}")
        sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        ls = sub.add_parser("list", help=f"list {group}")
        ls.add_argument("--json", action="store_true")
        get = sub.add_parser("get", help=f"show one {kind}")
        get.add_argument("id")
        put = sub.add_parser("put", help=f"validate and write a {kind} (file, - for stdin, or inline JSON/YAML)")
        put.add_argument("source")
        delete = sub.add_parser("delete", help=f"delete a {kind}")
        delete.add_argument("id")
        for action, handler in ((ls, list_), (get, get_), (put, put_), (delete, delete_)):
            add_target_options(action)
            action.set_defaults(handler=handler, kind=kind)


def _admin(args: argparse.Namespace) -> ConfigAdmin:
    apply_target(args)
    return ConfigAdmin(get_settings().config_table_name)


def _row(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    row = dict(entry)
    if kind == "rule":
        then = entry.get("then") or {}
        row["targets"] = ",".join(then.get("targets") or []) or ("split" if "split" in then else "reject")
        row.setdefault("priority", 100)
        row.setdefault("enabled", True)
    elif kind == "model":
        price = entry.get("price") or {}
        row["in_per_mtok"], row["out_per_mtok"] = price.get("input_per_mtok"), price.get("output_per_mtok")
        row["capabilities"] = ",".join(entry.get("capabilities") or [])
    else:
        row["default"] = ",".join(entry.get("default") or [])
        row["strategy"] = (entry.get("strategy") or {}).get("strategy")
    return row


def list_(args: argparse.Namespace) -> int:
    entries = sorted(_admin(args).entries(args.kind), key=lambda e: (e.get("priority", 100), str(e["id"])))
    if args.json:
        print_json(entries)
    else:
        print_table([_row(args.kind, e) for e in entries], COLUMNS[args.kind])
    return 0


def get_(args: argparse.Namespace) -> int:
    entry = _admin(args).get(args.kind, args.id)
    if entry is None:
        raise CliError(f"no {args.kind} {args.id!r}")
    print_json(entry)
    return 0


def put_(args: argparse.Namespace) -> int:
    admin = _admin(args)
    doc = read_document(args.source)
    if not isinstance(doc, dict):
        raise CliError(f"a {args.kind} must be a mapping")
    try:
        obj = validate_entry(args.kind, doc)
    except ValidationError as exc:
        raise CliError(f"invalid {args.kind}: {error_summary(exc)}") from None
    problems = reference_errors(
        {args.kind: {doc["id"]: obj}}, admin.known_models() | ({doc["id"]} if args.kind == "model" else set())
    )
    if problems:
        raise CliError("; ".join(problems))
    admin.put(args.kind, obj)
    print(f"wrote {args.kind} {doc['id']}")
    return 0


def delete_(args: argparse.Namespace) -> int:
    if not _admin(args).delete(args.kind, args.id):
        raise CliError(f"no {args.kind} {args.id!r}")
    print(f"deleted {args.kind} {args.id}")
    return 0
