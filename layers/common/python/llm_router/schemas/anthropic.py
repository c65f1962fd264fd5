"""Anthropic's Messages API wire format (`POST /v1/messages`), translated to and from the Chat Completions format
the gateway speaks, so the Anthropic SDK and tools built on it can use the router with the same routing, fallbacks
and accounting as chat. The translation keeps what both formats can say (text, images, tools, tool results, system
prompts, sampling, stop sequences); Anthropic-only features (thinking, citations, cache control) are not routed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_router.providers.base import StreamDelta, Usage
from llm_router.schemas.openai import ChatCompletion, ChatCompletionRequest

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ToolParam(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class MessagesRequest(BaseModel):
    """`POST /v1/messages` body."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    stop_sequences: list[str] | None = Field(None, max_length=4)
    stream: bool | None = False
    metadata: dict[str, Any] | None = None

    def to_chat(self) -> ChatCompletionRequest:
        """The same request in the Chat Completions format."""
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": _text_of(self.system)})
        for message in self.messages:
            messages.extend(_chat_messages(message))
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}
        if self.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                }
                for t in self.tools
            ]
            body["tool_choice"] = _tool_choice(self.tool_choice)
        for name in ("temperature", "top_p"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        if self.stop_sequences:
            body["stop"] = self.stop_sequences
        user = (self.metadata or {}).get("user_id")
        if isinstance(user, str):
            body["user"] = user
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return ChatCompletionRequest.model_validate(body)


def _text_of(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(block.get("text", "")) for block in content if block.get("type") == "text")


def _chat_messages(message: MessageParam) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "assistant":
        text = _text_of(message.content)
        calls = [
            {
                "id": b["id"],
                "type": "function",
                "function": {"name": b["name"], "arguments": json.dumps(b.get("input") or {})},
            }
            for b in message.content
            if b.get("type") == "tool_use"
        ]
        return [{"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "tool_result":
            content = block.get("content")
            text = content if isinstance(content, str) else _text_of(content or [])
            out.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source") or {})}})
        else:
            raise ValueError(f"content blocks of type {kind!r} are not supported")
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _image_url(source: dict[str, Any]) -> str:
    if source.get("type") == "url":
        return str(source.get("url", ""))
    return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"


def _tool_choice(choice: dict[str, Any] | None) -> Any:
    kind = (choice or {}).get("type", "auto")
    if kind == "tool":
        return {"type": "function", "function": {"name": str((choice or {}).get("name", ""))}}
    return {"any": "required", "none": "none"}.get(str(kind), "auto")


def message_of(completion: ChatCompletion, usage: Usage) -> dict[str, Any]:
    """A chat completion as an Anthropic `message` object."""
    choice = completion.choices[0]
    content: list[dict[str, Any]] = []
    if choice.message.content:
        content.append({"type": "text", "text": choice.message.content})
    for call in choice.message.tool_calls or []:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name, "input": _input(call.function.arguments)}
        )
    return {
        "id": "msg_" + completion.id.removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": _usage(usage),
    }


def _input(arguments: str) -> Any:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body; its SDK picks the exception class from the status and shows the message."""
    kind = ERROR_TYPES.get(status, "overloaded_error" if status == 529 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


class StreamTranslator:
    """Chat stream deltas -> Anthropic stream events `(name, data)`: message_start, a content block per text run or
    tool call (start, deltas, stop), message_delta with the stop reason and usage, message_stop."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self._block = -1
        self._open: str | None = None  # "text" or "tool:<index>"
        self._stop: str | None = None

    def start(self) -> Iterator[tuple[str, dict[str, Any]]]:
        message: dict[str, Any] = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }  # fmt: skip
        yield "message_start", {"type": "message_start", "message": message}

    def delta(self, delta: StreamDelta) -> Iterator[tuple[str, dict[str, Any]]]:
        if delta.content:
            yield from self._open_block("text", {"type": "text", "text": ""})
            yield "content_block_delta", self._delta({"type": "text_delta", "text": delta.content})
        for call in delta.tool_calls or ():
            function = call.get("function") or {}
            if call.get("id"):
                block = {"type": "tool_use", "id": call["id"], "name": function.get("name", ""), "input": {}}
                yield from self._open_block(f"tool:{call.get('index', 0)}", block)
            if function.get("arguments"):
                yield (
                    "content_block_delta",
                    self._delta({"type": "input_json_delta", "partial_json": function["arguments"]}),
                )
        if delta.finish_reason:
            self._stop = STOP_REASONS.get(delta.finish_reason, "end_turn")

    def end(self, usage: Usage) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._close()
        body = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        yield "message_delta", {"type": "message_delta", "delta": body, "usage": _usage(usage)}
        yield "message_stop", {"type": "message_stop"}

    def _open_block(self, key: str, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._open == key:
            return
        yield from self._close()
        self._block += 1
        self._open = key
        yield "content_block_start", {"type": "content_block_start", "index": self._block, "content_block": block}

    def _close(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._open is not None:
            self._open = None
            yield "content_block_stop", {"type": "content_block_stop", "index": self._block}

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._block, "delta": delta}
