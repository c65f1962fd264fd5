"""Cost maths, savings, estimated usage and price files, without AWS."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from llm_router.api import answer_headers
from llm_router.gateway import Gateway, RequestContext
from llm_router.local.runtime import example_config
from llm_router.metrics import MetricsRecorder
from llm_router.pricing import PriceFileError, cost_usd, default_prices, parse_price_file
from llm_router.providers.base import Deadline, Embeddings, InvalidRequest, ProviderResponse, StreamDelta, Usage
from llm_router.providers.registry import ProviderRegistry
from llm_router.schemas.catalog import ModelSpec, Price, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.helpers import FixedConfig, chat, model, snapshot

SONNET = Price(input_per_mtok=3, output_per_mtok=15, cache_read_per_mtok=0.3, cache_write_per_mtok=3.75)


class FixedUsage:
    """A provider that reports the usage it is given (None: reports none, like some OpenAI-compatible servers)."""

    name = "simulated"

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        raise InvalidRequest(f"{model.id}: no embeddings here")

    def __init__(self, usage: Usage | None) -> None:
        self.usage = usage

    def complete(self, request: ChatCompletionRequest, spec: ModelSpec, deadline: Deadline) -> ProviderResponse:
        return ProviderResponse("four words of answer", "stop", self.usage)

    def stream(
        self, request: ChatCompletionRequest, spec: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        yield StreamDelta(content="four words of answer", finish_reason="stop", usage=self.usage)


def gateway_with(usage: Usage | None, route: RouteSpec, emitted: list[dict[str, Any]]) -> Gateway:
    models = [
        model("cheap", price={"input_per_mtok": 0.1, "output_per_mtok": 0.4}),
        model("dear", price={"input_per_mtok": 3, "output_per_mtok": 15}),
    ]
    providers = ProviderRegistry()
    providers.register("simulated", FixedUsage(usage))
    config = FixedConfig(snapshot(models=models, routes=[route]))
    return Gateway(config, providers, MetricsRecorder(emitted.append), sleep=lambda s: None)


def test_cost_prices_cache_reads_and_writes_at_their_own_prices() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=50_000, cache_write_tokens=4000)

    cost = cost_usd(usage, SONNET)

    assert cost == pytest.approx((1000 * 3 + 200 * 15 + 50_000 * 0.3 + 4000 * 3.75) / 1e6)


def test_cached_tokens_cost_the_input_price_when_the_model_has_no_cache_prices() -> None:
    usage = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=1000, cache_write_tokens=500)

    cost = cost_usd(usage, Price(input_per_mtok=1, output_per_mtok=4))

    assert cost == pytest.approx((100 + 1000 + 500) * 1e-6 + 10 * 4e-6)


def test_reasoning_tokens_are_billed_once_as_part_of_the_output() -> None:
    thinking = Usage(input_tokens=500, output_tokens=3000, reasoning_tokens=2500)
    plain = Usage(input_tokens=500, output_tokens=3000)

    assert cost_usd(thinking, SONNET) == cost_usd(plain, SONNET) == pytest.approx((500 * 3 + 3000 * 15) / 1e6)


def test_savings_are_negative_when_the_routed_model_is_dearer_than_the_baseline() -> None:
    emitted: list[dict[str, Any]] = []
    usage = Usage(input_tokens=1000, output_tokens=1000)
    gw = gateway_with(usage, RouteSpec(id="auto", default=("dear",), baseline="cheap"), emitted)

    answer = gw.complete(chat(), RequestContext(tenant="t"))

    assert answer.cost_usd == pytest.approx(0.018)
    assert answer.baseline_cost_usd == pytest.approx(0.0005)
    assert answer.saved_usd == pytest.approx(0.0005 - 0.018)
    assert answer_headers(answer)["x-router-saved-usd"] == "-0.01750000"
    assert emitted[-1]["SavedUSD"] == [pytest.approx(-0.0175)]
    assert emitted[-1]["BaselineCostUSD"] == [pytest.approx(0.0005)]


def test_savings_are_the_baseline_cost_of_the_same_tokens_minus_the_actual_cost() -> None:
    emitted: list[dict[str, Any]] = []
    usage = Usage(input_tokens=2000, output_tokens=500, cache_read_tokens=1000)
    gw = gateway_with(usage, RouteSpec(id="auto", default=("cheap",), baseline="dear"), emitted)

    answer = gw.complete(chat(), RequestContext(tenant="t", request_id="r1"))

    dear = (2000 * 3 + 500 * 15 + 1000 * 3) / 1e6
    cheap = (2000 * 0.1 + 500 * 0.4 + 1000 * 0.1) / 1e6
    assert answer.saved_usd == pytest.approx(dear - cheap)
    assert emitted[-1]["CostUSD"] == [pytest.approx(cheap)]
    dimension_sets = emitted[-1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert {"Model", "Route", "Provider"} <= {name for names in dimension_sets for name in names}
    assert all(len(names) == 1 for names in dimension_sets)  # kept apart, never crossed
    assert (emitted[-1]["tenant"], emitted[-1]["request_id"], emitted[-1]["rule"]) == ("t", "r1", "default")
    assert emitted[-1]["cost_estimated"] is False


def test_a_route_without_baseline_reports_no_savings() -> None:
    emitted: list[dict[str, Any]] = []
    gw = gateway_with(Usage(10, 10), RouteSpec(id="auto", default=("cheap",)), emitted)

    answer = gw.complete(chat(), RequestContext(tenant="t"))

    assert answer.saved_usd is None
    assert "x-router-saved-usd" not in answer_headers(answer)
    assert "SavedUSD" not in emitted[-1]


def test_usage_is_estimated_and_flagged_when_the_provider_reports_none() -> None:
    emitted: list[dict[str, Any]] = []
    gw = gateway_with(None, RouteSpec(id="auto", default=("cheap",), baseline="dear"), emitted)

    answer = gw.complete(chat("x" * 400), RequestContext(tenant="t"))

    assert answer.usage.estimated and answer.usage.input_tokens >= 100
    assert answer_headers(answer)["x-router-cost-estimated"] == "true"
    assert emitted[-1]["cost_estimated"] is True
    assert answer.cost_usd > 0


def test_reported_usage_is_never_replaced_by_an_estimate() -> None:
    emitted: list[dict[str, Any]] = []
    gw = gateway_with(Usage(7, 3), RouteSpec(id="auto", default=("cheap",)), emitted)

    answer = gw.complete(chat("x" * 4000), RequestContext(tenant="t"))

    assert answer.cost_usd == pytest.approx((7 * 0.1 + 3 * 0.4) / 1e6)
    assert "x-router-cost-estimated" not in answer_headers(answer)


def test_reasoning_tokens_reach_the_caller_in_completion_token_details() -> None:
    gw = gateway_with(Usage(10, 100, reasoning_tokens=60), RouteSpec(id="auto", default=("cheap",)), [])

    usage = gw.complete(chat(), RequestContext(tenant="t")).completion.usage

    assert usage is not None and usage.completion_tokens == 100
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 60


def test_shipped_price_file_prices_every_example_model_with_source_and_date() -> None:
    prices = default_prices()
    catalog = {m["id"]: m for m in example_config()["models"]}

    assert set(prices) == set(catalog)
    for model_id, price in prices.items():
        assert price.source and price.as_of, model_id


def test_example_catalog_prices_agree_with_the_price_file() -> None:
    prices = default_prices()

    for entry in example_config()["models"]:
        assert Price.model_validate(entry["price"]) == prices[entry["id"]], entry["id"]


def test_price_file_entries_need_a_source() -> None:
    doc = {"prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2}}}

    with pytest.raises(PriceFileError, match="m: source is required"):
        parse_price_file(doc)


def test_price_file_lists_every_bad_entry() -> None:
    doc = {
        "prices": {
            "a": {"input_per_mtok": -1, "output_per_mtok": 2, "source": "s"},
            "b": "cheap",
            "c": {"input_per_mtok": 1, "output_per_mtok": 2, "source": "s", "as_of": "2026-11-01"},
        }
    }

    with pytest.raises(PriceFileError) as info:
        parse_price_file(doc)

    assert "a: input_per_mtok" in str(info.value) and "b: must be a mapping" in str(info.value)
    assert "c:" not in str(info.value)


def test_price_file_reads_unquoted_dates_as_text() -> None:
    import datetime

    doc = {
        "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2, "source": "s", "as_of": datetime.date(2026, 11, 1)}}
    }

    assert parse_price_file(doc)["m"].as_of == "2026-11-01"
