"""Anthropic's Messages API over urllib3: OpenAI messages -> `system`/`messages`/`tools` and back.

A catalog entry configures the endpoint:

- `base_url`: `https://api.anthropic.com` (with or without `/v1`); `/v1/messages` is appended.
- `api_key_ref`: the key's name (Secrets Manager map, or an environment variable locally), sent as `x-api-key`.
- `api_version`: the `anthropic-version` header (default `2023-06-01`).
- `headers`: extra headers, e.g. `anthropic-beta`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

import urllib3

from llm_router.providers import formats, http
from llm_router.providers.base import (
    STREAM_IDLE_SECONDS,
    ContextWindowExceeded,
    Deadline,
    Embeddings,
    InvalidRequest,
    ProviderError,
    ProviderResponse,
    RetryableError,
    StreamDelta,
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
# The status each error type of a streamed `error` event stands for (the stream's status line said 200).
ERROR_EVENT_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider:
    """Calls `POST {base_url}/v1/messages`."""

    name = "anthropic"

    def __init__(
        self,
        keys: http.KeySource,
        *,
        pool: urllib3.PoolManager | None = None,
        stream_idle_seconds: float = STREAM_IDLE_SECONDS,
        allow_loopback_http: bool = False,
    ) -> None:
        self._keys = keys
        # Local mode only: plain http to a model server on loopback (vLLM, Ollama, the test fakes).
        self._allow_loopback_http = allow_loopback_http
        self._pool = pool
        self._idle = stream_idle_seconds

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        key = http.api_key(model, self._keys)
        result = http.post_json(
            self._url(model), self.payload(request, model), self._headers(model, key), deadline,
            label=model.id, http=self._pool,
        )  # fmt: skip
        if result.status >= 400:
            raise self._error(result, model, key)
        return self.parse(result.body, model, json_tool=formats.json_schema_tool(request, model) is not None)

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        raise InvalidRequest(f"{model.id}: Anthropic's API has no embeddings")

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        key = http.api_key(model, self._keys)
        payload = {**self.payload(request, model), "stream": True}
        events = http.open_event_stream(
            self._url(model), payload, self._headers(model, key), deadline, label=model.id, http=self._pool,
            error=lambda result: self._error(result, model, key), idle_seconds=self._idle,
        )  # fmt: skip

        def event_error(body: dict[str, Any]) -> ProviderError:
            error = http.as_dict(body.get("error"))
            status = ERROR_EVENT_STATUSES.get(str(error.get("type")), 500)
            return self._error(http.HttpResult(status, {}, body), model, key)

        translator = EventTranslator(model, event_error, json_tool=formats.json_schema_tool(request, model) is not None)
        try:
            for event in events:
                try:
                    body = json.loads(event.data)
                except json.JSONDecodeError:
                    raise RetryableError(
                        f"{model.id}: a stream event was not valid JSON", kind="malformed_response"
                    ) from None
                delta = translator.translate(body)
                if delta is not None:
                    events.started = True
                    yield delta
                if translator.stopped:
                    break
            if not translator.stopped:
                raise RetryableError(f"{model.id}: the stream ended before the answer did", kind="connection")
        finally:
            events.close(drain=translator.stopped)

    @staticmethod
    def _headers(model: ModelSpec, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": model.api_version or DEFAULT_API_VERSION, **model.headers}
        if key is not None:
            headers["x-api-key"] = key
        return headers

    def _url(self, model: ModelSpec) -> str:
        base = (model.base_url or "").rstrip("/")
        return http.endpoint(
            base, "messages" if base.endswith("/v1") else "v1/messages", allow_loopback_http=self._allow_loopback_http
        )

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
    def _error(result: http.HttpResult, model: ModelSpec, key: str | None) -> ProviderError:
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


class EventTranslator:
    """Messages API stream events -> StreamDelta, mapping stop reasons, tool use and usage as `parse` does.

    Tool calls are numbered among tool calls (OpenAI's `index`), not among content blocks; with `json_tool`, the
    forced JSON tool's input arrives as text.
    """

    def __init__(self, model: ModelSpec, error: Callable[[dict[str, Any]], ProviderError], *, json_tool: bool) -> None:
        self._model = model
        self._error = error
        self._json_tool = json_tool
        self._answered_by: str | None = None
        self._usage: dict[str, Any] = {}
        self._calls: dict[int, int] = {}  # content block index -> tool call index
        self._arguments: dict[int, bool] = {}  # tool call index -> any argument fragment seen
        self._json_blocks: set[int] = set()
        self.stopped = False

    def translate(self, event: Any) -> StreamDelta | None:
        """The delta `event` carries, or None (message_start, ping, block ends without a delta)."""
        if not isinstance(event, dict):
            raise RetryableError(f"{self._model.id}: a stream event was not a JSON object", kind="malformed_response")
        kind = event.get("type")
        if kind == "error":
            raise self._error(event)
        if kind == "message_start":
            message = http.as_dict(event.get("message"))
            self._answered_by = message.get("model") if isinstance(message.get("model"), str) else None
            self._usage.update(message.get("usage") or {})
            return None
        if kind == "content_block_start":
            return self._block_start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(int(event.get("index", 0)))
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            self.stopped = True
        return None

    def _block_start(self, index: int, block: dict[str, Any]) -> StreamDelta | None:
        if block.get("type") == "text":
            return self._delta(content=str(block.get("text") or "") or None)
        if block.get("type") != "tool_use":
            return None
        if self._json_tool and block.get("name") == formats.JSON_TOOL_NAME:
            self._json_blocks.add(index)
            return None
        position = self._calls[index] = len(self._calls)
        self._arguments[position] = False
        call = {
            "index": position,
            "id": str(block.get("id")),
            "type": "function",
            "function": {"name": str(block.get("name")), "arguments": ""},
        }
        return self._delta(tool_calls=[call])

    def _block_delta(self, index: int, delta: dict[str, Any]) -> StreamDelta | None:
        if delta.get("type") == "text_delta":
            return self._delta(content=str(delta.get("text") or "") or None)
        if delta.get("type") != "input_json_delta":
            return None  # thinking, signatures, citations: not part of an OpenAI answer
        fragment = str(delta.get("partial_json") or "")
        if index in self._json_blocks:
            return self._delta(content=fragment or None)
        if index not in self._calls or not fragment:
            return None
        self._arguments[self._calls[index]] = True
        return self._delta(tool_calls=[{"index": self._calls[index], "function": {"arguments": fragment}}])

    def _block_stop(self, index: int) -> StreamDelta | None:
        # A tool called without input streams no fragments; `parse` would have said "{}".
        position = self._calls.get(index)
        if position is None or self._arguments[position]:
            return None
        self._arguments[position] = True
        return self._delta(tool_calls=[{"index": position, "function": {"arguments": "{}"}}])

    def _message_delta(self, event: dict[str, Any]) -> StreamDelta | None:
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason == "model_context_window_exceeded":
            raise ContextWindowExceeded(f"{self._model.id}: the answer ran past the model's context window")
        # Later usage counts are cumulative: they replace what message_start said.
        self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        finish = None
        if stop_reason is not None:
            finish = "tool_calls" if self._calls else STOP_REASONS.get(str(stop_reason), "stop")
            if self._json_blocks:
                finish = "stop"
        return self._delta(finish_reason=finish, usage=_usage(self._usage))

    def _delta(
        self,
        *,
        content: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        finish_reason: str | None = None,
        usage: Usage | None = None,
    ) -> StreamDelta | None:
        if content is None and tool_calls is None and finish_reason is None and usage is None:
            return None
        return StreamDelta(content, tool_calls, finish_reason, usage, answered_by=self._answered_by)


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
