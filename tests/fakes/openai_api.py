"""A fake OpenAI-compatible Chat Completions API: `POST /v1/chat/completions`, OpenAI's error envelope."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from tests.fakes.server import FakeAPI, last_user_text, pieces, sse

ERRORS = {
    "rate_limit": ("rate_limit_exceeded", "requests", "Rate limit reached for requests per min. Try again in 1s."),
    "server_error": ("server_error", "server_error", "The server had an error while processing your request."),
    "overloaded": ("server_error", "server_error", "The engine is currently overloaded, please try again later."),
    "auth": ("invalid_api_key", "invalid_request_error", "Incorrect API key provided."),
    "not_found": ("model_not_found", "invalid_request_error", "The model does not exist."),
    "bad_request": ("invalid_value", "invalid_request_error", "Invalid value for 'temperature'."),
}


class FakeOpenAI(FakeAPI):
    """Answers from the request: tool calls when tools are offered, text that echoes what it was given."""

    overloaded_status = 503

    def authorized(self, headers: dict[str, str]) -> bool:
        return self.api_key is None or headers.get("authorization") == f"Bearer {self.api_key}"

    def validate(self, path: str, headers: dict[str, str], body: Any) -> str | None:
        if path.split("?")[0].endswith("/embeddings"):
            return None if isinstance(body, dict) and isinstance(body.get("input"), list) else "'input' is required"
        if not path.split("?")[0].endswith("/chat/completions"):
            return f"Unknown path {path}"
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return "'model' and 'messages' are required"
        if body.get("stream_options") is not None and not body.get("stream"):
            return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return None

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if "input" in body:
            return self._embeddings(body)
        messages = body["messages"]
        last = messages[-1]
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if tools and choice != "none" and last.get("role") != "tool":
            name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
            arguments = json.dumps(self.tool_arguments)
            call_id = "call_" + hashlib.sha256(f"{name}{arguments}{len(messages)}".encode()).hexdigest()[:24]
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ]
            finish = "tool_calls"
        else:
            message["content"] = self._text(body, last)
            finish = "stop"
        prompt = len(json.dumps(messages)) // 4
        completion = len(json.dumps(message)) // 4
        return {
            "id": "chatcmpl-" + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"] + "-2024-07-18",
            "choices": [
                {"index": 0, "message": message, "logprobs": self._logprobs(body, message), "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt), "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "system_fingerprint": "fp_fake",
        }

    @staticmethod
    def _logprobs(body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any] | None:
        if not body.get("logprobs") or not message.get("content"):
            return None
        tokens = message["content"].split(" ")
        content = [{"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []} for t in tokens]
        return {"content": content, "refusal": None}

    @staticmethod
    def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
        size = int(body.get("dimensions") or 4)
        data = [
            {"object": "embedding", "index": i, "embedding": [round(len(text) / (k + 1), 3) for k in range(size)]}
            for i, text in enumerate(body["input"])
        ]
        tokens = sum(len(text) // 4 + 1 for text in body["input"])
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def stream_events(self, body: dict[str, Any]) -> list[bytes]:
        """The answer as `chat.completion.chunk` events: role, text or tool-call pieces, finish, usage, [DONE]."""
        answer = self.answer(body)
        message, choice = answer["choices"][0]["message"], answer["choices"][0]
        frame = {k: answer[k] for k in ("id", "created", "model", "system_fingerprint")}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return sse({**frame, "object": "chat.completion.chunk", "choices": choices, "usage": None, **extra})

        events = [chunk({"role": "assistant", "content": ""})]
        for i, call in enumerate(message.get("tool_calls") or []):
            opening = {"index": i, "id": call["id"], "type": "function"}
            events.append(
                chunk({"tool_calls": [{**opening, "function": {"name": call["function"]["name"], "arguments": ""}}]})
            )
            for piece in pieces(call["function"]["arguments"], self.stream_chunks):
                events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        for piece in pieces(message.get("content") or "", self.stream_chunks):
            events.append(chunk({"content": piece}))
        events.append(chunk({}, choice["finish_reason"]))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(sse({**frame, "object": "chat.completion.chunk", "choices": [], "usage": answer["usage"]}))
        events.append(sse("[DONE]"))
        return events

    def stream_error_event(self) -> bytes:
        return sse(self.error_body(500, "server_error"))

    @staticmethod
    def _text(body: dict[str, Any], last: dict[str, Any]) -> str:
        if last.get("role") == "tool":
            return f"The tool said: {last.get('content')}"
        content = last.get("content")
        images = sum(1 for p in content if p.get("type") == "image_url") if isinstance(content, list) else 0
        text = f"{body['model']} heard: {last_user_text(body['messages'])}"
        if images:
            text += f" (and saw {images} image{'s' if images > 1 else ''})"
        fmt = (body.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema"):
            return json.dumps({"answer": text})
        return text

    def error_body(self, status: int, kind: str, message: str | None = None) -> dict[str, Any]:
        code, error_type, default = ERRORS[kind]
        return {"error": {"message": message or default, "type": error_type, "param": None, "code": code}}

    def overflow_body(self, tokens: int, window: int) -> dict[str, Any]:
        return {
            "error": {
                "message": f"This model's maximum context length is {window} tokens. However, your messages "
                f"resulted in {tokens} tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
