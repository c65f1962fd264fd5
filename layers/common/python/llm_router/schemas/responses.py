"""OpenAI's Responses API wire format (`POST /v1/responses`), translated to and from Chat Completions so that it
runs on the same gateway path. What translates: text and image input, instructions, function tools and their
results, `text.format` (JSON schema or object), sampling, `max_output_tokens`, streaming. A response created with
`store: true` is kept (stores/response_store.py) with its conversation, so that `previous_response_id` continues it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_router.providers.base import StreamDelta, Usage
from llm_router.schemas.openai import ChatCompletion, ChatCompletionRequest


def is_response_id(value: str) -> bool:
    """`resp_` and the request id (letters and digits): anything else cannot name a stored response."""
    return value.startswith("resp_") and value[5:].isalnum()


class ResponsesRequest(BaseModel):
    """`POST /v1/responses` body."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    stream: bool | None = False
    # Kept only when asked for (OpenAI keeps responses unless told not to): prompts stay out of the table by default.
    store: bool | None = None
    previous_response_id: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("previous_response_id")
    @classmethod
    def _response_id(cls, value: str | None) -> str | None:
        if value is not None and not is_response_id(value):
            raise ValueError("previous_response_id must be the id of a response (resp_...)")
        return value

    def input_items(self) -> list[dict[str, Any]]:
        """`input` as a list of items (a string is one user message)."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return list(self.input)

    def to_chat(self, history: list[dict[str, Any]] | None = None) -> ChatCompletionRequest:
        """The same request as a chat completion, after `history` (the items of the response it continues)."""
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "developer", "content": self.instructions})
        for item in [*(history or []), *self.input_items()]:
            _append(messages, item)
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.tools:
            body["tools"] = [_function_tool(t) for t in self.tools]
        if self.tool_choice is not None:
            body["tool_choice"] = _tool_choice(self.tool_choice)
        response_format = _response_format((self.text or {}).get("format"))
        if response_format is not None:
            body["response_format"] = response_format
        extra = {"max_completion_tokens": self.max_output_tokens, "temperature": self.temperature,
                 "top_p": self.top_p, "metadata": self.metadata, "user": self.user}  # fmt: skip
        body |= {k: v for k, v in extra.items() if v is not None}
        if self.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return ChatCompletionRequest.model_validate(body)


def _append(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    kind = item.get("type", "message")
    if kind == "function_call":
        call = {"id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}  # fmt: skip
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
    elif kind == "message":
        messages.append({"role": item.get("role", "user"), "content": _content(item.get("content"))})
    else:
        raise ValueError(f"input items of type {kind!r} are not supported")


def _content(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content or ""
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image" and part.get("image_url"):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            raise ValueError(f"content parts of type {kind!r} are not supported")
    return parts


def _function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ValueError(f"only function tools are supported, not {tool.get('type')!r}")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> Any:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice.get("name", "")}}


def _response_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    if not fmt or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt.get("type")}


def _usage(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def _echoed_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {"strict": None, "parameters": None, **tool}


def _text_item(request_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    )
    return {"type": "message", "id": f"msg_{request_id}", "status": status, "role": "assistant", "content": content}


def _call_item(call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}  # fmt: skip


def response_object(
    request: ResponsesRequest, request_id: str, model: str, created: int, *, status: str = "completed",
    output: list[dict[str, Any]] | None = None, usage: Usage | None = None, incomplete: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A `response` object; what the request asked for is echoed, as OpenAI does."""
    text_format = (request.text or {}).get("format") or {"type": "text"}
    body: dict[str, Any] = {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": created,
        "status": "incomplete" if incomplete else status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": output or [],
        "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
        "previous_response_id": request.previous_response_id,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": text_format},
        "tool_choice": request.tool_choice or "auto",
        "tools": [_echoed_tool(t) for t in request.tools or []],
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled",
        "metadata": request.metadata or {},
    }
    if request.user is not None:
        body["user"] = request.user
    if usage is not None:
        body["usage"] = _usage(usage)
    return body


def response_of(request: ResponsesRequest, request_id: str, completion: ChatCompletion, usage: Usage) -> dict[str, Any]:
    choice = completion.choices[0]
    output: list[dict[str, Any]] = []
    if choice.message.content:
        output.append(_text_item(request_id, choice.message.content))
    for call in choice.message.tool_calls or []:
        output.append(_call_item(call.id, call.function.name, call.function.arguments))
    return response_object(request, request_id, completion.model, completion.created, output=output, usage=usage,
                           incomplete=choice.finish_reason == "length")  # fmt: skip


class StreamTranslator:
    """Chat stream deltas -> Responses stream events, each with its `sequence_number`: created and in_progress,
    an output item per text run or function call (added, deltas, done), then completed with the whole response."""

    def __init__(self, request: ResponsesRequest, request_id: str, model: str, created: int) -> None:
        self.request = request
        self.request_id = request_id
        self.model = model
        self.created = created
        self._sequence = 0
        self._items: list[dict[str, Any]] = []  # finished output items
        self._text: list[str] | None = None  # the text item being written
        self._call: dict[str, Any] | None = None  # the function call being written
        self._finish: str | None = None

    def start(self) -> Iterator[dict[str, Any]]:
        snapshot = response_object(self.request, self.request_id, self.model, self.created, status="in_progress")
        yield self._event("response.created", response=snapshot)
        yield self._event("response.in_progress", response=snapshot)

    def delta(self, delta: StreamDelta) -> Iterator[dict[str, Any]]:
        if delta.content:
            if self._text is None:
                yield from self._close_call()
                self._text = []
                item = _text_item(self.request_id, "", status="in_progress")
                yield self._event("response.output_item.added", output_index=len(self._items), item=item)
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield self._event("response.content_part.added", **self._where(), part=part)
            self._text.append(delta.content)
            yield self._event("response.output_text.delta", **self._where(), delta=delta.content, logprobs=[])
        for call in delta.tool_calls or ():
            function = call.get("function") or {}
            if call.get("id"):
                yield from self._close_text()
                yield from self._close_call()
                self._call = {"call_id": call["id"], "name": function.get("name", ""), "arguments": []}
                item = _call_item(call["id"], function.get("name", ""), "", status="in_progress")
                yield self._event("response.output_item.added", output_index=len(self._items), item=item)
            if function.get("arguments") and self._call is not None:
                self._call["arguments"].append(function["arguments"])
                yield self._event("response.function_call_arguments.delta", item_id=f"fc_{self._call['call_id']}",
                                  output_index=len(self._items), delta=function["arguments"])  # fmt: skip
        self._finish = delta.finish_reason or self._finish

    def end(self, usage: Usage) -> Iterator[dict[str, Any]]:
        yield from self._close_text()
        yield from self._close_call()
        final = response_object(self.request, self.request_id, self.model, self.created, output=self._items,
                                 usage=usage, incomplete=self._finish == "length")  # fmt: skip
        yield self._event("response.incomplete" if self._finish == "length" else "response.completed", response=final)

    def failed(self, message: str) -> Iterator[dict[str, Any]]:
        final = response_object(self.request, self.request_id, self.model, self.created, status="failed",
                                 output=self._items)  # fmt: skip
        final["error"] = {"code": "server_error", "message": message}
        yield self._event("response.failed", response=final)

    def _where(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self.request_id}", "output_index": len(self._items), "content_index": 0}

    def _close_text(self) -> Iterator[dict[str, Any]]:
        if self._text is None:
            return
        text = "".join(self._text)
        self._text = None
        yield self._event("response.output_text.done", **self._where(), text=text, logprobs=[])
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        yield self._event("response.content_part.done", **self._where(), part=part)
        item = _text_item(self.request_id, text)
        yield self._event("response.output_item.done", output_index=len(self._items), item=item)
        self._items.append(item)

    def _close_call(self) -> Iterator[dict[str, Any]]:
        if self._call is None:
            return
        call, self._call = self._call, None
        arguments = "".join(call["arguments"])
        item = _call_item(call["call_id"], call["name"], arguments)
        yield self._event("response.function_call_arguments.done", item_id=item["id"],
                          output_index=len(self._items), name=call["name"], arguments=arguments)  # fmt: skip
        yield self._event("response.output_item.done", output_index=len(self._items), item=item)
        self._items.append(item)

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
