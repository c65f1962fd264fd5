"""OpenAI's error body is built in one place (`api.error_envelope`); every other module raises or returns outcomes."""

from __future__ import annotations

import ast
from pathlib import Path

from llm_router.api import error_envelope, error_of
from llm_router.errors import AllModelsFailedError, InvalidRequestError

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "common" / "python" / "llm_router"


def _builds_an_envelope(node: ast.AST) -> bool:
    """A dict literal `{"error": {... "message": ..., "type": ...}}`."""
    if not isinstance(node, ast.Dict):
        return False
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "error" and isinstance(value, ast.Dict):
            inner = {k.value for k in value.keys if isinstance(k, ast.Constant)}
            if {"message", "type"} <= inner:
                return True
    return False


def test_only_the_api_builds_the_openai_error_envelope() -> None:
    builders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        builders += [f"{path.relative_to(LIBRARY)}:{n.lineno}" for n in ast.walk(tree) if _builds_an_envelope(n)]

    assert len(builders) == 1 and builders[0].startswith("api.py:"), builders


def test_the_envelope_has_openais_four_fields_and_keeps_extras() -> None:
    body = error_envelope("Bad.", "invalid_request_error", "invalid_json", "messages", request_id="r1")

    assert body == {
        "error": {
            "message": "Bad.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "invalid_json",
            "request_id": "r1",
        }
    }


def test_router_errors_render_through_the_one_envelope() -> None:
    assert error_of(InvalidRequestError("Nope.", param="model", code="model_not_found")) == error_envelope(
        "Nope.", "invalid_request_error", "model_not_found", "model"
    )
    failed = error_of(AllModelsFailedError("r9", {"rule": "default"}, [{"model": "a", "ok": False}]))["error"]
    assert failed["code"] == "all_models_failed" and failed["request_id"] == "r9" and failed["queued"] is False
