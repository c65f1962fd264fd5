"""Cost of a request from token usage and catalog prices (USD per million tokens), and price files.

Costs are estimates from list prices: they leave out discounts, free tiers, taxes, batch or provisioned pricing
and everything that is not tokens, so they will not match the AWS bill to the cent.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from pydantic import ValidationError

from llm_router.providers.base import Usage
from llm_router.schemas.catalog import Price
from llm_router.schemas.records import error_summary

PER_TOKEN = 1e-6
DEFAULT_PRICE_FILE = "data/prices.yaml"


def cost_usd(usage: Usage, price: Price) -> float:
    """input x input price + output x output price + cached tokens at their own prices.

    `usage.input_tokens` excludes cached tokens; cache reads/writes fall back to the input price when the
    catalog has no separate price for them. Reasoning ("thinking") tokens are part of `usage.output_tokens`
    and billed at the output price, as OpenAI, Anthropic and Bedrock report and bill them, so they are not
    added again (`usage.reasoning_tokens` only says how many of the output tokens they were).
    """
    cache_read = price.cache_read_per_mtok if price.cache_read_per_mtok is not None else price.input_per_mtok
    cache_write = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
    return PER_TOKEN * (
        usage.input_tokens * price.input_per_mtok
        + usage.output_tokens * price.output_per_mtok
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )


class PriceFileError(ValueError):
    """A price file that cannot be applied; the message lists every problem."""


def parse_price_file(doc: Any) -> dict[str, Price]:
    """Prices by catalog model id from a price file: `{"prices": {MODEL_ID: {input_per_mtok, ...}}}`.

    Every entry needs `input_per_mtok`, `output_per_mtok` and `source` (where the price was read); `as_of`
    (the date it was read) is strongly recommended and `llm-router prices import` fills in today without it.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("prices"), dict):
        raise PriceFileError("a price file is a mapping with `prices: {MODEL_ID: {input_per_mtok: ..., ...}}`")
    unknown = set(doc) - {"prices"}
    if unknown:
        raise PriceFileError(f"unknown top-level keys: {sorted(unknown)} (expected prices)")
    prices: dict[str, Price] = {}
    errors: list[str] = []
    for model_id, entry in doc["prices"].items():
        if not isinstance(entry, dict):
            errors.append(f"{model_id}: must be a mapping of prices")
            continue
        if entry.get("as_of") is not None:
            entry = {**entry, "as_of": str(entry["as_of"])}  # YAML reads an unquoted date as a date
        try:
            price = Price.model_validate(entry)
        except ValidationError as exc:
            errors.append(f"{model_id}: {error_summary(exc)}")
            continue
        if not price.source:
            errors.append(f"{model_id}: source is required (where the price comes from)")
            continue
        prices[str(model_id)] = price
    if errors:
        raise PriceFileError("; ".join(errors))
    return prices


def default_prices() -> dict[str, Price]:
    """The price file shipped with the package: list prices of every model in the example catalog."""
    import yaml  # the CLI's dependency, not the Lambda layer's: the router never reads price files

    text = resources.files("llm_router").joinpath(DEFAULT_PRICE_FILE).read_text(encoding="utf-8")
    return parse_price_file(yaml.safe_load(text))
