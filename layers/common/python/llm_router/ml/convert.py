"""Convert the shared outcome data into the evaluation format `llm-router eval` reads, one JSON object a line:

    {"id": str, "prompt": str, "outcomes": {MODEL: {"score": float, "cost_usd": float}}}

Model names are the source's own. The files carry no token counts, so tokens are estimated from text (about four
characters a token, as the router does) and priced with `PRICES` below (RouteLLM) or dcrouter's own price list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from llm_router.ml.datasets import (
    ROUTELLM_STRONG,
    ROUTELLM_WEAK,
    Example,
    Split,
    dcrouter_prices,
    read_dcrouter,
    read_routellm_gsm8k,
    read_routellm_mmlu,
)
from llm_router.routing.features import estimate_tokens

Source = Literal["routellm-mmlu", "routellm-gsm8k", "dcrouter"]
SOURCES: tuple[Source, ...] = ("routellm-mmlu", "routellm-gsm8k", "dcrouter")

# USD per million input / output tokens for the RouteLLM pair (list prices, 2024-2025): OpenAI's price for
# gpt-4-1106-preview, and Amazon Bedrock's on-demand price for Mixtral 8x7B Instruct.
PRICES: dict[str, tuple[float, float]] = {
    ROUTELLM_STRONG: (10.0, 30.0),
    ROUTELLM_WEAK: (0.45, 0.70),
}
PRICE_SOURCES = {
    ROUTELLM_STRONG: "openai.com/api/pricing (gpt-4-1106-preview)",
    ROUTELLM_WEAK: "aws.amazon.com/bedrock/pricing (Mixtral 8x7B Instruct)",
}
# RouteLLM asked for one token per MMLU answer (a letter); the few-shot prefix it sent is not in the files.
MMLU_OUTPUT_TOKENS = 1
# dcrouter has no responses: a typical short answer.
DCROUTER_OUTPUT_TOKENS = 200


def cost_usd(input_tokens: int, output_tokens: int, price: tuple[float, float]) -> float:
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


def _line(example: Example, costs: dict[str, float]) -> dict[str, Any]:
    return {
        "id": example.id,
        "prompt": example.prompt,
        "outcomes": {
            model: {"score": score, "cost_usd": round(costs[model], 10)} for model, score in example.outcomes.items()
        },
    }


def convert(source: Source, src_dir: Path, split: Split) -> Iterator[dict[str, Any]]:
    """Evaluation records for one source folder and split (RouteLLM: test = SHA-256-even half)."""
    if source == "routellm-mmlu":
        for ex in read_routellm_mmlu(src_dir, split):
            tokens = estimate_tokens(ex.prompt)
            yield _line(ex, {m: cost_usd(tokens, MMLU_OUTPUT_TOKENS, PRICES.get(m, (0, 0))) for m in ex.outcomes})
    elif source == "routellm-gsm8k":
        for ex in read_routellm_gsm8k(src_dir, split):
            tokens = estimate_tokens(ex.prompt)
            yield _line(
                ex,
                {
                    m: cost_usd(tokens, estimate_tokens(ex.responses.get(m, "")), PRICES.get(m, (0, 0)))
                    for m in ex.outcomes
                },
            )
    elif source == "dcrouter":
        prices = dcrouter_prices(src_dir)
        for ex in read_dcrouter(src_dir, split):
            tokens = estimate_tokens(ex.prompt)
            yield _line(ex, {m: cost_usd(tokens, DCROUTER_OUTPUT_TOKENS, prices.get(m, (0, 0))) for m in ex.outcomes})
    else:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def write_jsonl(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write records one per line; returns how many."""
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
