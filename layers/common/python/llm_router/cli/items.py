"""`llm-router rules|models|routes list|get|put|delete`: edit single Config table items, validated first."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table, read_document
from llm_router.schemas.records import ConfigKind, dump_entry, error_summary, validate_entry
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin, dependents, validate_document

GROUPS: dict[str, ConfigKind] = {"rules": "rule", "models": "model", "routes": "route"}
COLUMNS = {
    "rule": ["id", "route", "priority", "enabled", "targets", "description"],
    "model": ["id", "provider", "model_id", "region", "in_per_mtok", "out_per_mtok", "capabilities"],
    "route": ["id", "default", "baseline", "strategy", "description"],
}
SECTION = {"rule": "rules", "model": "models", "route": "routes"}


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
        delete = sub.add_parser("delete", help=f"delete a {kind} (refused while other items name it)")
        delete.add_argument("id")
        delete.add_argument("--force", action="store_true", help="delete it anyway; lists what breaks")
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
    admin = _admin(args)
    entries = sorted(admin.entries(args.kind), key=lambda e: (e.get("priority", 100), str(e["id"])))
    if args.json:
        print_json(entries)
        return 0
    problems = item_problems(admin.validated().errors, args.kind)
    rows = []
    for entry in entries:
        row = _row(args.kind, entry)
        why = problems.get(str(entry["id"]))
        # Routing skips an invalid item (or keeps its last valid version): never show it as if it were in force.
        row["status"] = f"INVALID: {'; '.join(why)}" if why else "ok"
        if why and args.kind == "rule":
            row["enabled"] = "INVALID"
        rows.append(row)
    print_table(rows, [*COLUMNS[args.kind], "status"])
    return 0


def item_problems(errors: list[str], kind: str) -> dict[str, list[str]]:
    """The problems of each item of `kind`, from validation errors shaped `kind id: reason`."""
    found: dict[str, list[str]] = {}
    for error in errors:
        head, _, reason = error.partition(": ")
        named_kind, _, item_id = head.partition(" ")
        if named_kind == kind and item_id:
            found.setdefault(item_id, []).append(reason)
    return found


def _with(doc: dict[str, list[dict[str, Any]]], kind: str, entry: dict[str, Any] | None, item_id: str) -> Any:
    """The table's document with `kind item_id` replaced by `entry` (or removed when None)."""
    section = [e for e in doc.get(SECTION[kind], []) if str(e.get("id")) != item_id]
    return {**doc, SECTION[kind]: section + ([entry] if entry is not None else [])}


def _new_errors(admin: ConfigAdmin, kind: str, entry: dict[str, Any] | None, item_id: str) -> list[str]:
    """Problems the table would have after the change that it does not have now."""
    doc = admin.export()
    before = set(validate_document(doc).errors)
    return [e for e in validate_document(_with(doc, kind, entry, item_id)).errors if e not in before]


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
    problems = _new_errors(admin, args.kind, dump_entry(obj), str(doc["id"]))
    if problems:
        raise CliError("nothing written: " + "; ".join(problems))
    admin.put(args.kind, obj)
    print(f"wrote {args.kind} {doc['id']}")
    return 0


def delete_(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if admin.get(args.kind, args.id) is None:
        raise CliError(f"no {args.kind} {args.id!r}")
    breaks = _new_errors(admin, args.kind, None, args.id)
    if breaks and not args.force:
        users = ", ".join(dependents(validate_document(admin.export()).entries, args.kind, args.id))
        raise CliError(
            f"{args.kind} {args.id} is in use ({users or 'see below'}); deleting it would break: "
            + "; ".join(breaks)
            + ". Change those first, or delete with --force."
        )
    admin.delete(args.kind, args.id)
    print(f"deleted {args.kind} {args.id}")
    for problem in breaks:
        print(f"now invalid: {problem}")
    return 0
