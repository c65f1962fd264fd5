"""Cost of a request from token usage and catalog prices (USD per million tokens)."""

from __future__ import annotations

from llm_router.providers.base import Usage
from llm_router.schemas.catalog import Price

PER_TOKEN = 1e-6


def cost_usd(usage: Usage, price: Price) -> float:
    """input x input price + output x output price + cached tokens at their own prices.

    `usage.input_tokens` excludes cached tokens; cache reads/writes fall back to the input price when the
    catalog has no separate price for them.
    """
    cache_read = price.cache_read_per_mtok if price.cache_read_per_mtok is not None else price.input_per_mtok
    cache_write = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
    return PER_TOKEN * (
        usage.input_tokens * price.input_per_mtok
        + usage.output_tokens * price.output_per_mtok
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )
