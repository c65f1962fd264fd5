"""Any OpenAI-compatible Chat Completions API: OpenAI, Azure OpenAI, Mistral, Groq, Together, DeepSeek, vLLM, Ollama.

The request goes out as the caller sent it, with the catalog's `model_id` in place of the router's model name, but
only with the fields of an explicit allow-list (`FORWARDED_FIELDS`): a field outside it is dropped, since fields
such as `store` or `service_tier` change data retention or cost upstream without the router knowing. A model
opts in to provider-specific extras with `forward_fields` in its catalog entry. A catalog entry configures the
endpoint:

- `base_url`: the API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`;
  `/chat/completions` is appended.
- `api_key_ref`: the key's name (Secrets Manager map, or an environment variable locally); no ref, no auth header.
- `api_version`: Azure OpenAI's `api-version` query parameter; with it the key goes in the `api-key` header,
  which is how Azure expects it.
- `headers`: extra headers sent with every call (organisation or project ids, gateway tokens).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlencode

import urllib3

from llm_router.providers import http
from llm_router.providers.base import (
    STREAM_IDLE_SECONDS,
    Deadline,
    Embeddings,
    ProviderAuthError,
    ProviderError,
    ProviderResponse,
    RetryableError,
    StreamDelta,
    Usage,
)
from llm_router.routing.features import estimate_tokens
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest

# Fields the router consumes itself: `stream` and `stream_options` are set by the adapter (`stream()` asks for
# usage in the last chunk), and `metadata` feeds routing rules (OpenAI accepts it only together with `store`).
ROUTER_ONLY_FIELDS = ("stream", "stream_options", "metadata")
# The Chat Completions fields an OpenAI-compatible provider receives (besides `model_id`); the rest are dropped
# unless the model's `forward_fields` names them.
FORWARDED_FIELDS = frozenset(
    {
        "messages", "tools", "tool_choice", "response_format", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "n", "user", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
        "logprobs", "top_logprobs", "parallel_tool_calls", "reasoning_effort",
    }
)  # fmt: skip
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}
CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
CONTEXT_OVERFLOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
# A 429 that waiting will not fix: the account is out of credit (a configuration error, like a wrong key).
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


class OpenAICompatProvider:
    """Calls `POST {base_url}/chat/completions` with urllib3."""

    name = "openai"

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
        return self.parse(result.body, model)

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        key = http.api_key(model, self._keys)
        payload = self.payload(request, model)
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        events = http.open_event_stream(
            self._url(model), payload, self._headers(model, key), deadline, label=model.id, http=self._pool,
            error=lambda result: self._error(result, model, key), idle_seconds=self._idle,
        )  # fmt: skip

        def event_error(body: dict[str, Any]) -> ProviderError:
            return self._error(http.HttpResult(_error_status(body), {}, body), model, key)

        chunks = ChunkTranslator(model, event_error)
        finished = False
        try:
            for event in events:
                if event.data.strip() == "[DONE]":
                    finished = True
                    break
                delta = chunks.translate(_json(event.data, model))
                if delta is not None:
                    events.started = True
                    yield delta
            if not finished and not chunks.finished:
                raise RetryableError(f"{model.id}: the stream ended before the answer did", kind="connection")
        finally:
            events.close(drain=finished)

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        """`POST {base_url}/embeddings`, passed through."""
        key = http.api_key(model, self._keys)
        payload: dict[str, Any] = {"model": model.model_id, "input": texts, "encoding_format": "float"}
        if dimensions is not None:
            payload["dimensions"] = dimensions
        url = http.endpoint(model.base_url or "", "embeddings", allow_loopback_http=self._allow_loopback_http)
        if model.api_version:
            url += "?" + urlencode({"api-version": model.api_version})
        result = http.post_json(url, payload, self._headers(model, key), deadline, label=model.id, http=self._pool)
        if result.status >= 400:
            raise self._error(result, model, key)
        data = result.body.get("data") if isinstance(result.body, dict) else None
        if not isinstance(data, list) or not all(
            isinstance(d, dict) and isinstance(d.get("embedding"), list) for d in data
        ):
            raise RetryableError(f"{model.id}: the answer was not a valid embedding list", kind="malformed_response")
        vectors = [[float(v) for v in d["embedding"]] for d in sorted(data, key=lambda d: int(d.get("index", 0)))]
        usage = http.as_dict(result.body.get("usage"))
        if "prompt_tokens" in usage:
            return Embeddings(vectors, int(usage["prompt_tokens"] or 0))
        return Embeddings(vectors, sum(estimate_tokens(t) for t in texts), estimated=True)

    @staticmethod
    def payload(request: ChatCompletionRequest, model: ModelSpec) -> dict[str, Any]:
        """The upstream request body: the caller's allowed fields with the provider's model name."""
        allowed = FORWARDED_FIELDS | set(model.forward_fields)
        body = request.model_dump(mode="json", exclude_none=True, by_alias=True)
        body = {name: value for name, value in body.items() if name in allowed and name not in ROUTER_ONLY_FIELDS}
        body["model"] = model.model_id
        if model.max_output_tokens is not None:
            for name in ("max_tokens", "max_completion_tokens"):
                if name in body:
                    body[name] = min(body[name], model.max_output_tokens)
        return body

    def _url(self, model: ModelSpec) -> str:
        url = http.endpoint(model.base_url or "", "chat/completions", allow_loopback_http=self._allow_loopback_http)
        if model.api_version:
            url += "?" + urlencode({"api-version": model.api_version})
        return url

    @staticmethod
    def _headers(model: ModelSpec, key: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if key is not None:
            if model.api_version:
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        headers.update(model.headers)
        return headers

    @staticmethod
    def parse(body: Any, model: ModelSpec) -> ProviderResponse:
        """The router's response from an OpenAI `chat.completion` object."""
        choices = body.get("choices") if isinstance(body, dict) else None
        if not choices or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
            raise RetryableError(f"{model.id}: the answer was not a valid chat completion", kind="malformed_response")
        choice = choices[0]
        message = choice["message"]
        tool_calls = [_tool_call(call, i) for i, call in enumerate(message.get("tool_calls") or [])] or None
        finish = FINISH_REASONS.get(str(choice.get("finish_reason")), "stop")
        if choice.get("finish_reason") == "function_call" or (tool_calls and finish == "stop"):
            finish = "tool_calls"
        return ProviderResponse(
            content=_text(message.get("content")),
            finish_reason=finish,
            usage=_usage(body.get("usage")),
            tool_calls=tool_calls,
            answered_by=body.get("model") if isinstance(body.get("model"), str) else None,
            logprobs=choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else None,
        )

    @staticmethod
    def _error(result: http.HttpResult, model: ModelSpec, key: str | None) -> ProviderError:
        error = result.body.get("error") if isinstance(result.body, dict) else None
        if isinstance(error, dict):
            message, code = error.get("message"), error.get("code") or error.get("type")
        else:
            # vLLM, Ollama and proxies in front of them use `{"error": "..."}`, `{"detail": ...}` or `{"message": ...}`.
            body = result.body if isinstance(result.body, dict) else {}
            message, code = error or body.get("detail") or body.get("message"), None
        code = str(code) if code is not None else ""
        text = http.redact(f"{model.id}: {http.short(message) or f'HTTP {result.status}'}", key)
        if code in QUOTA_CODES:
            return ProviderAuthError(text, status=result.status)
        if 400 <= result.status < 500 and result.status not in http.RETRYABLE_STATUSES | http.AUTH_STATUSES | {404}:
            return http.request_error(
                text,
                result.status,
                context_overflow=code in CONTEXT_OVERFLOW_CODES or http.mentions_context_overflow(str(message or "")),
                content_filtered=code in CONTENT_FILTER_CODES,
            )
        return http.status_error(result.status, text, result.headers)


class ChunkTranslator:
    """`chat.completion.chunk` objects -> StreamDelta, mapping finish reasons and usage as `parse` does."""

    def __init__(self, model: ModelSpec, error: Callable[[dict[str, Any]], ProviderError]) -> None:
        self._model = model
        self._error = error
        self._tool_calls = False
        self.finished = False

    def translate(self, chunk: Any) -> StreamDelta | None:
        """The delta in `chunk`, or None when it carries nothing (role-only chunks, filter results)."""
        if not isinstance(chunk, dict):
            raise RetryableError(f"{self._model.id}: a stream chunk was not a JSON object", kind="malformed_response")
        if chunk.get("error") is not None:
            raise self._error(chunk)
        choices = chunk.get("choices")
        choice = choices[0] if choices else None
        if not isinstance(choice, dict):
            choice = {}
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        calls = None
        if raw_calls := delta.get("tool_calls"):
            calls = [_tool_call_delta(call, i) for i, call in enumerate(raw_calls)]
            self._tool_calls = True
        finish = None
        if reason := choice.get("finish_reason"):
            finish = FINISH_REASONS.get(str(reason), "stop")
            if reason == "function_call" or (self._tool_calls and finish == "stop"):
                finish = "tool_calls"
            self.finished = True
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            content = _text(content)
        usage = _usage(chunk["usage"]) if "usage" in chunk else None
        if not content and calls is None and finish is None and usage is None:
            return None
        model = chunk.get("model")
        logprobs = choice.get("logprobs")
        return StreamDelta(
            content or None,
            calls,
            finish,
            usage,
            answered_by=model if model and isinstance(model, str) else None,
            logprobs=logprobs if isinstance(logprobs, dict) else None,
        )


def _tool_call_delta(call: Any, position: int) -> dict[str, Any]:
    """An OpenAI tool-call delta, passed through with its arguments fragment as a string."""
    if not isinstance(call, dict):
        raise RetryableError("a stream chunk had a tool call that was not an object", kind="malformed_response")
    out: dict[str, Any] = {"index": int(call.get("index", position))}
    if call.get("id"):
        out["id"] = str(call["id"])
        out["type"] = "function"
    function = http.as_dict(call.get("function"))
    fn: dict[str, Any] = {}
    if function.get("name"):
        fn["name"] = str(function["name"])
    arguments = function.get("arguments")
    if arguments is not None:
        # Ollama sends arguments as an object; the wire format wants a JSON string.
        fn["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
    if fn:
        out["function"] = fn
    return out


# The decoder's own scanner: what `json.loads` ends up calling, without its two Python frames in between.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _json(data: str, model: ModelSpec) -> Any:
    try:
        value, end = _SCAN(data, 0)
        if end == len(data):
            return value
    except (StopIteration, ValueError):
        pass  # leading white space or not JSON: json.loads says which
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise RetryableError(f"{model.id}: a stream chunk was not valid JSON", kind="malformed_response") from None


def _error_status(body: dict[str, Any]) -> int:
    """The status an `{"error": ...}` event would have had: the stream's status line already said 200."""
    error = body.get("error")
    kind = str(error.get("type") or "") if isinstance(error, dict) else ""
    return 400 if kind == "invalid_request_error" else 500


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # a few servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)) or None
    return str(content)


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise RetryableError("the answer had a tool call without a function name", kind="malformed_response")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        # Ollama sends arguments as an object; the wire format wants a JSON string.
        arguments = json.dumps(arguments if arguments is not None else {})
    call_id = call.get("id")
    if not call_id:
        # Some servers leave the id out; a stable one lets the caller send the tool result back.
        call_id = "call_" + hashlib.sha256(f"{index}\x00{function['name']}\x00{arguments}".encode()).hexdigest()[:24]
    return {"id": str(call_id), "type": "function", "function": {"name": str(function["name"]), "arguments": arguments}}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict) or "prompt_tokens" not in raw:
        return None
    prompt = int(raw.get("prompt_tokens") or 0)
    cached = int((raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((raw.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    # OpenAI counts cached tokens inside prompt_tokens; the router's input_tokens excludes them.
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )
