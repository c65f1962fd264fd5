"""`llm-router prices list|set|import`: model prices, kept inside the model items of the Config table."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table, read_document
from llm_router.pricing import DEFAULT_PRICE_FILE, PriceFileError, default_prices, parse_price_file
from llm_router.schemas.catalog import ModelSpec, Price
from llm_router.schemas.records import error_summary, validate_entry
from llm_router.settings import get_settings
from llm_router.stores.config_admin import ConfigAdmin

COLUMNS = ["model", "input", "output", "cache_read", "cache_write", "source", "as_of"]
PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("prices", help="list, set or import model prices (USD per million tokens)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="every model's prices, source and date")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_)

    st = sub.add_parser("set", help="set one model's prices")
    st.add_argument("model", help="catalog model id")
    st.add_argument("--input", type=_usd, required=True, metavar="USD", help="per million input tokens")
    st.add_argument("--output", type=_usd, required=True, metavar="USD", help="per million output tokens")
    st.add_argument("--cache-read", type=_usd, metavar="USD", help="per million cached input tokens read")
    st.add_argument("--cache-write", type=_usd, metavar="USD", help="per million input tokens written to the cache")
    st.add_argument("--source", required=True, help="where the price comes from (URL or document)")
    st.add_argument("--as-of", help="date the price was read (default: today, UTC)")
    st.set_defaults(handler=set_)

    im = sub.add_parser("import", help="apply a price file to the models it names")
    im.add_argument("file", nargs="?", help=f"price file (default: the shipped {DEFAULT_PRICE_FILE})")
    im.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    im.set_defaults(handler=import_)

    for action in (ls, st, im):
        add_target_options(action)


def _usd(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"a price must be zero or more, got {text!r}")
    return value


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _admin(args: argparse.Namespace) -> ConfigAdmin:
    apply_target(args)
    return ConfigAdmin(get_settings().config_table_name)


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    price = entry.get("price") or {}
    return {
        "model": entry["id"],
        "input": price.get("input_per_mtok"),
        "output": price.get("output_per_mtok"),
        "cache_read": price.get("cache_read_per_mtok"),
        "cache_write": price.get("cache_write_per_mtok"),
        "source": price.get("source"),
        "as_of": price.get("as_of"),
    }


def list_(args: argparse.Namespace) -> int:
    rows = [_row(e) for e in sorted(_admin(args).entries("model"), key=lambda e: str(e["id"]))]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, COLUMNS)
        print("USD per million tokens; costs computed from them are estimates from list prices, not the bill.")
    return 0


def _with_price(admin: ConfigAdmin, model_id: str, price: Price) -> tuple[ModelSpec, Price | None]:
    """The model with its new price, and its old price (None when the stored item had none)."""
    entry = admin.get("model", model_id)
    if entry is None:
        raise CliError(f"no model {model_id!r} (`llm-router prices list` shows the catalog)")
    old = entry.get("price")
    entry["price"] = price.model_dump(exclude_none=True)
    try:
        model = validate_entry("model", entry)
    except ValidationError as exc:
        raise CliError(f"model {model_id}: {error_summary(exc)}") from None
    assert isinstance(model, ModelSpec)
    return model, Price.model_validate(old) if isinstance(old, dict) else None


def _describe(old: Price | None, new: Price) -> str:
    if old is None:
        return "new price"
    changes = [
        f"{name.removesuffix('_per_mtok')} {getattr(old, name)} -> {getattr(new, name)}"
        for name in PRICE_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]
    if old.source != new.source or old.as_of != new.as_of:
        changes.append(f"as of {new.as_of} from {new.source}")
    return ", ".join(changes) or "unchanged"


def set_(args: argparse.Namespace) -> int:
    price = Price(
        input_per_mtok=args.input,
        output_per_mtok=args.output,
        cache_read_per_mtok=args.cache_read,
        cache_write_per_mtok=args.cache_write,
        source=args.source,
        as_of=args.as_of or _today(),
    )
    admin = _admin(args)
    model, old = _with_price(admin, args.model, price)
    admin.put("model", model)
    print(f"{args.model}: {_describe(old, price)}")
    return 0


def import_(args: argparse.Namespace) -> int:
    try:
        prices = parse_price_file(read_document(args.file)) if args.file else default_prices()
    except PriceFileError as exc:
        raise CliError(f"{args.file or DEFAULT_PRICE_FILE}: {exc}") from None
    admin = _admin(args)
    known = admin.known_models()
    updates: list[ModelSpec] = []
    for model_id, price in sorted(prices.items()):
        if model_id not in known:
            print(f"- {model_id}: not in the catalog, skipped")
            continue
        if price.as_of is None:
            price = price.model_copy(update={"as_of": _today()})
        model, old = _with_price(admin, model_id, price)
        change = _describe(old, price)
        print(f"{'=' if change == 'unchanged' else '~'} {model_id}: {change}")
        if change != "unchanged":
            updates.append(model)
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    for model in updates:
        admin.put("model", model)
    print(f"updated {len(updates)} of {len(known)} models")
    return 0
