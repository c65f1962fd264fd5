"""A fake Anthropic Messages API: `POST /v1/messages`, Anthropic's headers, blocks and error envelope."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from tests.fakes.server import FakeAPI, last_user_text, pieces, sse

ERRORS = {
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "server_error": ("api_error", "Internal server error"),
    "overloaded": ("overloaded_error", "Overloaded"),
    "auth": ("authentication_error", "invalid x-api-key"),
    "not_found": ("not_found_error", "model: claude-nonexistent"),
    "bad_request": ("invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'),
}


class FakeAnthropic(FakeAPI):
    """Answers from the request: tool_use when tools are offered, text that echoes what it was given."""

    overloaded_status = 529

    def authorized(self, headers: dict[str, str]) -> bool:
        return self.api_key is None or headers.get("x-api-key") == self.api_key

    def validate(self, path: str, headers: dict[str, str], body: Any) -> str | None:
        if path != "/v1/messages":
            return f"Unknown path {path}"
        if not headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return "model: Field required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        roles = [m.get("role") for m in body["messages"]]
        if any(r not in ("user", "assistant") for r in roles) or any(a == b for a, b in itertools.pairwise(roles)):
            return 'messages: roles must alternate between "user" and "assistant"'
        return None

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        last_blocks = messages[-1]["content"]
        last_blocks = [{"type": "text", "text": last_blocks}] if isinstance(last_blocks, str) else last_blocks
        results = [b for b in last_blocks if b.get("type") == "tool_result"]
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {"type": "auto"}
        content: list[dict[str, Any]]
        if tools and choice.get("type") != "none" and not results:
            name = choice["name"] if choice.get("type") == "tool" else tools[0]["name"]
            arguments = self.tool_arguments
            if name == "json_response":
                arguments = {"answer": f"{body['model']} heard: {last_user_text(messages)}"}
            tool_id = "toolu_" + hashlib.sha256(f"{name}{len(messages)}".encode()).hexdigest()[:24]
            content = [{"type": "tool_use", "id": tool_id, "name": name, "input": arguments}]
            stop = "tool_use"
        elif results:
            said = results[-1].get("content")
            if isinstance(said, list):
                said = " ".join(b.get("text", "") for b in said if b.get("type") == "text")
            content, stop = [{"type": "text", "text": f"The tool said: {said}"}], "end_turn"
        else:
            images = sum(1 for b in last_blocks if b.get("type") == "image")
            text = f"{body['model']} heard: {last_user_text(messages)}"
            if images:
                text += f" (and saw {images} image{'s' if images > 1 else ''})"
            content, stop = [{"type": "text", "text": text}], "end_turn"
        prompt = len(json.dumps(messages)) // 4
        cached = min(self.cached_tokens, prompt)
        return {
            "id": "msg_" + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:24],
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": prompt - cached,
                "output_tokens": len(json.dumps(content)) // 4,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": cached,
            },
        }

    def stream_events(self, body: dict[str, Any]) -> list[bytes]:
        """The answer as Messages API events: message_start, ping, blocks in pieces, message_delta, message_stop."""
        answer = self.answer(body)
        usage = answer["usage"]
        opening = {**answer, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events = [sse({"type": "message_start", "message": opening}, "message_start"), sse({"type": "ping"}, "ping")]
        for index, block in enumerate(answer["content"]):
            start: dict[str, Any]
            if block["type"] == "text":
                start, field, kind, whole = {"type": "text", "text": ""}, "text", "text_delta", block["text"]
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                field, kind, whole = "partial_json", "input_json_delta", json.dumps(block["input"])
            events.append(
                sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
            )
            for piece in pieces(whole, self.stream_chunks):
                delta = {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: piece}}
                events.append(sse(delta, "content_block_delta"))
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        closing = {"stop_reason": answer["stop_reason"], "stop_sequence": None}
        events.append(
            sse(
                {"type": "message_delta", "delta": closing, "usage": {"output_tokens": usage["output_tokens"]}},
                "message_delta",
            )
        )
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return events

    def stream_error_event(self) -> bytes:
        return sse(self.error_body(529, "overloaded"), "error")

    def error_body(self, status: int, kind: str, message: str | None = None) -> dict[str, Any]:
        error_type, default = ERRORS[kind]
        return {"type": "error", "error": {"type": error_type, "message": message or default}}

    def overflow_body(self, tokens: int, window: int) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": f"prompt is too long: {tokens} tokens > {window} maximum",
            },
        }
