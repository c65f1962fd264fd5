"""A fake Bedrock runtime: `POST /model/{modelId}/converse` and `/converse-stream`, the latter in the AWS
event-stream binary encoding, so botocore's own parsing of ConverseStream runs against it.

The request's model id (from the path) is added to the recorded body as `model`.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import struct
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import FakeAPI, Reply, last_user_text, pieces

ERRORS = {
    "rate_limit": ("ThrottlingException", "Too many requests, please wait before trying again."),
    "server_error": ("InternalServerException", "The server encountered an internal error."),
    "overloaded": ("ServiceUnavailableException", "The service is temporarily unable to handle the request."),
    "auth": ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    "not_found": ("ResourceNotFoundException", "Could not resolve the foundation model from the model identifier."),
    "bad_request": ("ValidationException", "The provided request is not valid"),
}


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream encoding: prelude (lengths + CRC), string headers, payload, CRC."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(name: str, body: dict[str, Any]) -> bytes:
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, json.dumps(body).encode())


def exception(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, json.dumps({"message": message}).encode())


class FakeBedrock(FakeAPI):
    """Answers from the request: toolUse when tools are offered, text that echoes what it was given.

    `invoked_model` adds a prompt router's trace to the answer; `stream_exception` names the exception event
    the stream_error mode sends.
    """

    stream_content_type = "application/vnd.amazon.eventstream"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.invoked_model: str | None = None
        self.stream_exception = "modelStreamErrorException"

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply | None:
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "model":
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError:
                body = None
            if isinstance(body, dict):
                raw = json.dumps({**body, "model": unquote(parts[2])}).encode()
        return super().handle(path, headers, raw)

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization", "").startswith("AWS4-HMAC-SHA256")

    def validate(self, path: str, headers: dict[str, str], body: Any) -> str | None:
        if not path.endswith(("/converse", "/converse-stream")):
            return f"Unknown path {path}"
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return "A conversation must start with a user message."
        return None

    def streaming(self, path: str, body: Any) -> bool:
        return path.endswith("/converse-stream")

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        tools = (body.get("toolConfig") or {}).get("tools") or []
        results = [b["toolResult"] for b in messages[-1]["content"] if "toolResult" in b]
        content: list[dict[str, Any]]
        if tools and not results:
            name = tools[0]["toolSpec"]["name"]
            forced = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool")
            name = forced["name"] if forced else name
            arguments = self.tool_arguments
            if name == "json_response":
                arguments = {"answer": f"{body['model']} heard: {self._last_text(messages)}"}
            use_id = "tooluse_" + hashlib.sha256(f"{name}{len(messages)}".encode()).hexdigest()[:22]
            content, stop = [{"toolUse": {"toolUseId": use_id, "name": name, "input": arguments}}], "tool_use"
        elif results:
            said = " ".join(c.get("text", "") for c in results[-1]["content"])
            content, stop = [{"text": f"The tool said: {said}"}], "end_turn"
        else:
            content, stop = [{"text": f"{body['model']} heard: {self._last_text(messages)}"}], "end_turn"
        prompt = len(json.dumps(messages)) // 4
        cached = min(self.cached_tokens, prompt)
        output = len(json.dumps(content)) // 4
        usage = {
            "inputTokens": prompt - cached,
            "outputTokens": output,
            "totalTokens": prompt + output,
            "cacheReadInputTokens": cached,
            "cacheWriteInputTokens": 0,
        }
        reply: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 42},
        }
        if self.invoked_model:
            reply["trace"] = {"promptRouter": {"invokedModelId": self.invoked_model}}
        return reply

    def stream_events(self, body: dict[str, Any]) -> list[bytes]:
        """The answer as ConverseStream events: messageStart, blocks in pieces, messageStop, metadata."""
        answer = self.answer(body)
        events = [event("messageStart", {"role": "assistant"})]
        for index, block in enumerate(answer["output"]["message"]["content"]):
            if "toolUse" in block:
                use = block["toolUse"]
                start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
                events.append(event("contentBlockStart", {"start": start, "contentBlockIndex": index}))
                for piece in pieces(json.dumps(use["input"]), self.stream_chunks):
                    delta = {"delta": {"toolUse": {"input": piece}}, "contentBlockIndex": index}
                    events.append(event("contentBlockDelta", delta))
            else:
                for piece in pieces(block["text"], self.stream_chunks):
                    events.append(event("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": index}))
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
        events.append(event("messageStop", {"stopReason": answer["stopReason"]}))
        metadata = {"usage": answer["usage"], "metrics": answer["metrics"]}
        if "trace" in answer:
            metadata["trace"] = answer["trace"]
        events.append(event("metadata", metadata))
        return events

    def stream_error_event(self) -> bytes:
        return exception(self.stream_exception, "The model failed while streaming its answer.")

    @staticmethod
    def _last_text(messages: list[dict[str, Any]]) -> str:
        for message in reversed(messages):
            texts = [b["text"] for b in message["content"] if "text" in b]
            if texts:
                return " ".join(texts)
        return last_user_text(messages)

    def error_body(self, status: int, kind: str, message: str | None = None) -> dict[str, Any]:
        code, default = ERRORS[kind]
        return {"__type": code, "message": message or default}

    def overflow_body(self, tokens: int, window: int) -> dict[str, Any]:
        return {"__type": "ValidationException", "message": "Input is too long for requested model."}
