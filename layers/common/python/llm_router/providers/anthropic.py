"""Anthropic's Messages API over urllib3: OpenAI messages -> `system`/`messages`/`tools` and back.

A catalog entry configures the endpoint:

- `base_url`: `https://api.anthropic.com` (with or without `/v1`); `/v1/messages` is appended.
- `api_key_ref`: the key's name (Secrets Manager map, or an environment variable locally), sent as `x-api-key`.
- `api_version`: the `anthropic-version` header (default `2023-06-01`).
- `headers`: extra headers, e.g. `anthropic-beta`.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3

from llm_router.providers import formats, http
from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    ProviderResponse,
    RetryableError,
    Usage,
)
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest, ImagePart, Message, TextPart

DEFAULT_API_VERSION = "2023-06-01"
# Anthropic requires max_tokens; this is used when neither the request nor the catalog sets a limit.
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider:
    """Calls `POST {base_url}/v1/messages`."""

    name = "anthropic"

    def __init__(self, keys: http.KeySource, *, pool: urllib3.PoolManager | None = None) -> None:
        self._keys = keys
        self._pool = pool

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        key = http.api_key(model, self._keys)
        headers = {"anthropic-version": model.api_version or DEFAULT_API_VERSION, **model.headers}
        if key is not None:
            headers["x-api-key"] = key
        result = http.post_json(
            self._url(model), self.payload(request, model), headers, deadline, label=model.id, http=self._pool
        )
        if result.status >= 400:
            raise self._error(result, model, key)
        return self.parse(result.body, model, json_tool=formats.json_schema_tool(request, model) is not None)

    @staticmethod
    def _url(model: ModelSpec) -> str:
        base = (model.base_url or "").rstrip("/")
        return http.endpoint(base, "messages" if base.endswith("/v1") else "v1/messages")

    @staticmethod
    def payload(request: ChatCompletionRequest, model: ModelSpec) -> dict[str, Any]:
        """The Messages API request body for `request`."""
        limit = request.output_token_limit or model.max_output_tokens or DEFAULT_MAX_TOKENS
        if model.max_output_tokens is not None:
            limit = min(limit, model.max_output_tokens)
        body: dict[str, Any] = {
            "model": model.model_id,
            "max_tokens": limit,
            "messages": formats.alternating_turns(request, _blocks),
        }
        system = formats.system_prompt(request, model)
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = formats.clamp_temperature(request.temperature)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        stops = formats.stop_sequences(request)
        if stops:
            body["stop_sequences"] = stops
        if request.user:
            body["metadata"] = {"user_id": request.user}
        body.update(_tools(request, model))
        return body

    @staticmethod
    def parse(body: Any, model: ModelSpec, *, json_tool: bool = False) -> ProviderResponse:
        """The router's response from a Messages API `message` object; with `json_tool`, the forced JSON tool's
        input is the answer."""
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise RetryableError(f"{model.id}: the answer was not a valid message", kind="malformed_response")
        stop_reason = body.get("stop_reason")
        if stop_reason == "model_context_window_exceeded":
            raise ContextWindowExceeded(f"{model.id}: the answer ran past the model's context window")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        json_answer: str | None = None
        for block in body["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                if json_tool and block.get("name") == formats.JSON_TOOL_NAME:
                    json_answer = json.dumps(block.get("input"))
                else:
                    calls.append(formats.tool_call(str(block.get("id")), str(block.get("name")), block.get("input")))
        finish = STOP_REASONS.get(str(stop_reason), "stop")
        if json_answer is not None:
            return ProviderResponse(json_answer, "stop", _usage(body.get("usage")), answered_by=body.get("model"))
        if calls:
            finish = "tool_calls"
        return ProviderResponse(
            content="".join(texts) or None,
            finish_reason=finish,
            usage=_usage(body.get("usage")),
            tool_calls=calls or None,
            answered_by=body.get("model") if isinstance(body.get("model"), str) else None,
        )

    @staticmethod
    def _error(result: http.HttpResult, model: ModelSpec, key: str | None) -> Exception:
        error = result.body.get("error") if isinstance(result.body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or "")
        kind = str(error.get("type") or "")
        text = http.redact(f"{model.id}: {http.short(message) or f'HTTP {result.status}'}", key)
        if result.status in (400, 413, 422):
            return http.request_error(
                text,
                result.status,
                context_overflow=http.mentions_context_overflow(message),
                content_filtered=False,
            )
        return http.status_error(
            result.status, text, result.headers, kind="overloaded" if kind == "overloaded_error" else None
        )


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        parts = [_part(p) for p in formats.content_parts(message)]
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": parts or ""}]
    blocks = [_part(p) for p in formats.content_parts(message)]
    for call in message.tool_calls or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": formats.tool_arguments(call.function.arguments, call.function.name),
            }
        )
    return blocks


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    url = part.image_url.url
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    image = formats.parse_data_url(url)
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.base64}}


def _tools(request: ChatCompletionRequest, model: ModelSpec) -> dict[str, Any]:
    forced = formats.json_schema_tool(request, model)
    if forced is not None:
        name, description, schema = forced
        return {
            "tools": [{"name": name, "description": description, "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": name},
        }
    if not request.tools:
        return {}
    tools = [
        {
            "name": tool.function.name,
            "description": tool.function.description or "",
            "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
        }
        for tool in request.tools
    ]
    choice: dict[str, Any]
    if request.tool_choice == "none":
        choice = {"type": "none"}
    elif request.tool_choice == "required":
        choice = {"type": "any"}
    elif request.tool_choice is None or request.tool_choice == "auto":
        choice = {"type": "auto"}
    else:
        choice = {"type": "tool", "name": request.tool_choice.function.name}
    if (request.model_extra or {}).get("parallel_tool_calls") is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": choice}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict) or "input_tokens" not in raw:
        return None
    # Anthropic's input_tokens already excludes cache reads and writes, as the router's Usage does.
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=int(raw.get("cache_read_input_tokens") or 0),
        cache_write_tokens=int(raw.get("cache_creation_input_tokens") or 0),
    )
