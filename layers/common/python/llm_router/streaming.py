"""Server-sent events built from a complete answer, so streaming clients work unchanged."""

from __future__ import annotations

import json
from typing import Any

from llm_router.schemas.openai import ChatCompletion

CHUNK_CHARS = 48


def _pieces(text: str) -> list[str]:
    """Split on word boundaries into chunks of about CHUNK_CHARS characters; joined they give `text` back."""
    pieces, start = [], 0
    while start < len(text):
        end = min(len(text), start + CHUNK_CHARS)
        space = text.rfind(" ", start + 1, end) if end < len(text) else -1
        end = space if space > start else end
        pieces.append(text[start:end])
        start = end
    return pieces


def sse_body(completion: ChatCompletion, include_usage: bool = False) -> str:
    """`text/event-stream` body: a role chunk, content (or tool-call) chunks, a finish chunk, usage, [DONE]."""
    base = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
    }
    choice = completion.choices[0]
    message = choice.message

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _pieces(message.content or "")]
    for index, call in enumerate(message.tool_calls or []):
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.function.name, "arguments": call.function.arguments},
                        }
                    ]
                }
            )
        )
    events.append(chunk({}, choice.finish_reason))
    if include_usage and completion.usage is not None:
        usage = {**base, "choices": [], "usage": completion.usage.model_dump(exclude_none=True)}
        events.append("data: " + json.dumps(usage, separators=(",", ":")) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)
