"""A small valid instance of a JSON Schema: what the simulated model answers to `response_format: json_schema` and
passes as tool arguments, so that structured-output code (`chat.completions.parse()`, LangChain's
`with_structured_output`, tool loops) runs locally against the schema it will meet in production.

Covers what OpenAI's structured outputs and pydantic's `model_json_schema()` emit: `$ref` into `$defs`/`definitions`,
`anyOf`/`oneOf`/`allOf`, `enum`/`const`, nullable types, string formats and length bounds, numeric bounds and
`multipleOf`, array item counts. Every property is filled in (not only the required ones), because strict schemas
require all of them and a fuller instance exercises more of the caller's code. `pattern` is not honoured.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 12
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
    "duration": "P1D",
}


def minimal_instance(schema: Any, *, text: str = "simulated") -> Any:
    """An instance of `schema`; `text` fills free-form strings."""
    return _Builder(schema if isinstance(schema, dict) else {}, text).build(schema, 0)


class _Builder:
    def __init__(self, root: dict[str, Any], text: str) -> None:
        self.root = root
        self.text = text

    def build(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return None if depth > MAX_DEPTH else {}
        if "$ref" in schema:
            return self.build(self._resolve(str(schema["$ref"])), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        combined = self._combined(schema)
        if combined is not None:
            return self.build(combined, depth + 1)
        return self._typed(schema, _type_of(schema), depth)

    def _combined(self, schema: dict[str, Any]) -> Any:
        """The one schema an `anyOf`/`oneOf`/`allOf` stands for here, or None when it has none."""
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                branch = _preferred(schema[key])
                if isinstance(branch, dict) and "$ref" in branch:
                    branch = self._resolve(str(branch["$ref"]))
                # Keywords beside the union (a `format`, bounds) constrain the branch too.
                siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "default")}
                return {**siblings, **branch} if isinstance(branch, dict) else branch
        if schema.get("allOf"):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self._resolve(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
                if isinstance(part, dict):
                    merged = _merge(merged, part)
            return merged
        return None

    def _typed(self, schema: dict[str, Any], kind: str, depth: int) -> Any:
        if kind == "object":
            properties = schema.get("properties") or {}
            return {name: self.build(sub, depth + 1) for name, sub in properties.items()}
        if kind == "array":
            count = int(schema.get("minItems") or 0) or 1
            count = min(count, int(schema.get("maxItems", count)))
            prefix = schema.get("prefixItems") or []
            items = [self.build(sub, depth + 1) for sub in prefix[:count]]
            return items + [self.build(schema.get("items") or {}, depth + 1) for _ in range(count - len(items))]
        if kind == "string":
            return _string(schema, self.text)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        return None

    def _resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.removeprefix("#").strip("/").split("/"):
            if not part:
                continue
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "object"


def _preferred(options: list[Any]) -> Any:
    """A non-null branch where there is one: a nullable field gets a value, which exercises more code."""
    return next((o for o in options if not (isinstance(o, dict) and o.get("type") == "null")), options[0])


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    if "properties" in left and "properties" in right:
        merged["properties"] = {**left["properties"], **right["properties"]}
    return merged


def _string(schema: dict[str, Any], text: str) -> str:
    value = _FORMATS.get(str(schema.get("format")), text)
    low = int(schema.get("minLength") or 0)
    if len(value) < low:
        value = (value * (low // max(1, len(value)) + 1))[:low]
    if "maxLength" in schema:
        value = value[: int(schema["maxLength"])]
    return value


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum")
    if schema.get("exclusiveMinimum") is not None and not isinstance(schema["exclusiveMinimum"], bool):
        low = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    high = schema.get("maximum")
    if schema.get("exclusiveMaximum") is not None and not isinstance(schema["exclusiveMaximum"], bool):
        high = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    value: float = 0
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    step = schema.get("multipleOf")
    if step:
        value = math.ceil(value / step) * step
    return math.ceil(value) if integer else value
