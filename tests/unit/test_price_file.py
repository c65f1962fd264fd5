"""Price files: every shape that is not a mapping of prices is refused with a message, every bad entry named."""

from __future__ import annotations

from typing import Any

import pytest

from llm_router.pricing import PriceFileError, parse_price_file

GOOD = {"input_per_mtok": 1, "output_per_mtok": 2, "source": "example.com/pricing"}


@pytest.mark.parametrize("doc", [[1], "prices", {"prices": [GOOD]}, {"prices": None}, {}])
def test_a_document_without_a_prices_mapping_is_refused(doc: Any) -> None:
    with pytest.raises(PriceFileError, match="a price file is a mapping"):
        parse_price_file(doc)


def test_every_entry_that_is_not_a_mapping_is_named() -> None:
    with pytest.raises(PriceFileError) as info:
        parse_price_file({"prices": {"a": "cheap", "b": GOOD, "c": 3}})
    assert "a: must be a mapping" in str(info.value) and "c: must be a mapping" in str(info.value)


def test_every_entry_without_a_source_is_named() -> None:
    unsourced = {"input_per_mtok": 1, "output_per_mtok": 2}
    with pytest.raises(PriceFileError) as info:
        parse_price_file({"prices": {"a": unsourced, "b": GOOD, "c": unsourced}})
    assert "a: source is required" in str(info.value) and "c: source is required" in str(info.value)


def test_good_entries_are_all_read() -> None:
    prices = parse_price_file({"prices": {"a": GOOD, "b": {**GOOD, "input_per_mtok": 3}}})
    assert sorted(prices) == ["a", "b"] and prices["b"].input_per_mtok == 3
