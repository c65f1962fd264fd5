"""OpenAI's published schemas (tests/fixtures/openai_openapi, MIT), as JSON-schema validators by component name."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).parent / "fixtures" / "openai_openapi" / "schemas.json"


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMAS.read_text())


@cache
def validator(component: str) -> Draft202012Validator:
    """Validates against `#/components/schemas/<component>`, with every reference resolved in the same document."""
    document = _document()
    assert component in document["components"]["schemas"], component
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{component}"})


def violations(component: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema, as readable lines (empty when it conforms)."""
    errors = sorted(validator(component).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:300]}" for e in errors]


def sse_data(body: str) -> list[Any]:
    """The JSON payloads of a `text/event-stream` body, `[DONE]` left out."""
    out = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line.removeprefix("data: ")))
    return out
