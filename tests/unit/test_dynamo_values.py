"""The stores' own DynamoDB value conversions agree with boto3's serializer and deserializer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from llm_router.stores.dynamo import attribute, item, plain_item, plain_value

VALUES: list[Any] = [
    "text",
    "",
    0,
    -42,
    Decimal("0.000000125"),
    Decimal("1E+2"),
    True,
    False,
    None,
    b"\x00\x01",
    ["a", 1, None, {"nested": [True, Decimal("2.5")]}],
    {"k": "v", "n": 3, "m": {"x": []}},
    {"b", "a"},
    {1, 2, 3},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_attribute_values_are_what_boto3_writes(value: Any) -> None:
    mine, theirs = attribute(value), TypeSerializer().serialize(value)
    if "SS" in theirs or "NS" in theirs:  # sets: order is not defined
        ((kind, values),) = theirs.items()
        assert list(mine) == [kind] and sorted(mine[kind]) == sorted(values)
    else:
        assert mine == theirs


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_plain_values_are_boto3s_with_plain_numbers(value: Any) -> None:
    raw = TypeSerializer().serialize(value)
    expected = TypeDeserializer().deserialize(raw)

    def plain(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | set):
            return sorted(plain(x) for x in v) if isinstance(v, set) else [plain(x) for x in v]
        if hasattr(v, "value"):  # boto3's Binary
            return bytes(v.value)
        return v

    got = plain_value(raw)
    assert (sorted(got) if isinstance(value, set) else got) == plain(expected)
    assert not isinstance(got, Decimal)


def test_floats_are_stored_as_their_decimal_text_and_items_round_trip() -> None:
    assert attribute(0.1) == {"N": "0.1"}
    stored = item({"pk": "usage#acme", "cost_usd": 0.25, "requests": 3, "tags": ["x"], "gone": None})
    assert plain_item(stored) == {"pk": "usage#acme", "cost_usd": 0.25, "requests": 3, "tags": ["x"], "gone": None}


def test_what_dynamodb_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError):
        attribute(object())
    with pytest.raises(TypeError):
        attribute({"a", 1})
