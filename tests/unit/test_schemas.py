"""Wire format, rules and catalog entries are validated with messages that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.rules import Rule


def test_multipart_content_with_images_is_accepted() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            ],
        }
    )
    assert request.has_images()
    assert request.messages[0].text() == "what is this?"


def test_tools_and_tool_messages_round_trip() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "wx", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            "tools": [{"type": "function", "function": {"name": "wx", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "wx"}},
        }
    )
    assert request.uses_tools()


def test_unknown_request_fields_are_kept_for_providers() -> None:
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "seed": 7, "presence_penalty": 0.5}
    )
    assert request.model_extra == {"seed": 7, "presence_penalty": 0.5}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"n": 2}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
def test_out_of_range_fields_are_named(patch: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "x"}], **patch})
    assert info.value.errors()[0]["loc"][0] == field


def test_rule_needs_exactly_one_action() -> None:
    with pytest.raises(ValidationError, match="exactly one of targets, split, reject"):
        Rule.model_validate({"id": "r", "then": {"targets": ["a"], "reject": {"message": "no"}}})


def test_rule_regex_must_compile() -> None:
    with pytest.raises(ValidationError, match="regex does not compile"):
        Rule.model_validate({"id": "r", "when": {"regex": "("}, "then": {"targets": ["a"]}})


def test_rule_rejects_unknown_condition_keys() -> None:
    with pytest.raises(ValidationError, match="keywrds"):
        Rule.model_validate({"id": "r", "when": {"keywrds": ["a"]}, "then": {"targets": ["a"]}})


def test_reject_status_must_be_4xx() -> None:
    with pytest.raises(ValidationError):
        Rule.model_validate({"id": "r", "then": {"reject": {"status": 500, "message": "x"}}})


def test_http_models_need_a_base_url() -> None:
    with pytest.raises(ValidationError, match="needs base_url"):
        ModelSpec.model_validate({"id": "m", "provider": "openai", "model_id": "gpt"})


def test_route_needs_a_default_chain() -> None:
    with pytest.raises(ValidationError):
        RouteSpec.model_validate({"id": "auto", "default": []})


def test_a_model_cannot_claim_logprobs_its_api_does_not_return() -> None:
    with pytest.raises(ValidationError, match="cannot return logprobs"):
        ModelSpec.model_validate({"id": "m", "provider": "bedrock", "model_id": "x", "capabilities": ["logprobs"]})
