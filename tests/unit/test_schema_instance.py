"""The simulator's structured answers are valid instances of the caller's schema, whatever shape it has."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from llm_router.providers.schema_instance import minimal_instance


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str = Field(min_length=12)
    zip_code: str = Field(max_length=5)


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=130)
    score: float = Field(gt=0.5, multiple_of=0.25)
    email: str | None = Field(json_schema_extra={"format": "email"})
    color: Color
    kind: Literal["staff"]
    tags: list[str] = Field(min_length=2)
    addresses: list[Address]
    nested: dict[str, int]


NODE = {"type": "object", "properties": {"child": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "pydantic_with_refs": Person.model_json_schema(),
    "nullable_type_list": {"type": "object", "properties": {"x": {"type": ["null", "integer"], "minimum": 3}}},
    "all_of": {
        "allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"properties": {"b": {"const": 2}}}]
    },
    "one_of_array": {"type": "array", "minItems": 3, "items": {"oneOf": [{"type": "boolean"}, {"type": "string"}]}},
    "date_time": {"type": "string", "format": "date-time"},
    "exclusive_bounds": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    "recursive": {"$defs": {"node": NODE}, "$ref": "#/$defs/node"},
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_instance_is_valid(name: str) -> None:
    schema = SCHEMAS[name]

    instance = minimal_instance(schema)

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(instance)] == [], instance


def test_every_property_is_filled_in() -> None:
    instance = minimal_instance(Person.model_json_schema())

    assert set(instance) == set(Person.model_fields)
    assert Person.model_validate(instance).email == "user@example.com"
