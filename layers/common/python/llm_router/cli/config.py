"""`llm-router config validate|import|export FILE`: the whole configuration as one YAML or JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from llm_router.cli.common import CliError, add_target_options, apply_target, read_document
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin, ValidatedConfig, validate_document


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("config", help="validate, import or export the whole configuration file")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    v = sub.add_parser("validate", help="check a config file (no AWS access)")
    v.add_argument("file")
    v.set_defaults(handler=validate)

    i = sub.add_parser("import", help="validate a config file, then write every item to the Config table")
    i.add_argument("file")
    i.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    add_target_options(i)
    i.set_defaults(handler=import_)

    e = sub.add_parser("export", help="write the Config table's models, routes and rules to a file")
    e.add_argument("file", help="output path (.yaml, .yml or .json), or - for stdout")
    add_target_options(e)
    e.set_defaults(handler=export)


def problems(config: ValidatedConfig) -> list[str]:
    """What `config validate` prints for an invalid file (`serve --config` refuses to start with the same)."""
    return [f"invalid: {error}" for error in config.errors]


def validate(args: argparse.Namespace) -> int:
    config = validate_document(read_document(args.file))
    if not config.ok:
        for line in problems(config):
            print(line)
        return 1
    counts = ", ".join(f"{len(v)} {k}s" for k, v in config.entries.items())
    print(f"valid: {counts}")
    return 0


def import_(args: argparse.Namespace) -> int:
    apply_target(args)
    config = validate_document(read_document(args.file))
    if not config.ok:
        for error in config.errors:
            print(f"invalid: {error}")
        raise CliError("nothing written: fix the errors above first")
    admin = ConfigAdmin(get_settings().config_table_name)
    for line in admin.diff(config):
        print(line)
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    print(f"imported {admin.apply(config)} items")
    return 0


def export(args: argparse.Namespace) -> int:
    apply_target(args)
    doc = ConfigAdmin(get_settings().config_table_name).export()
    if args.file == "-":
        print(yaml.safe_dump(doc, sort_keys=False), end="")
        return 0
    path = Path(args.file)
    text = json.dumps(doc, indent=2) + "\n" if path.suffix == ".json" else yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    print(f"exported {sum(len(v) for v in doc.values())} items to {path}")
    return 0
