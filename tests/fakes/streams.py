"""Reassembling streamed deltas the way a client does, to compare a stream with the complete answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llm_router.providers.base import ProviderResponse, StreamDelta, Usage


@dataclass
class Assembled:
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    answered_by: str | None = None
    deltas: list[StreamDelta] = field(default_factory=list)

    @classmethod
    def of(cls, answer: ProviderResponse) -> Assembled:
        return cls(answer.content, answer.tool_calls, answer.finish_reason, answer.usage, answer.answered_by)

    def same_answer(self) -> tuple[Any, ...]:
        return (self.content, self.tool_calls, self.finish_reason, self.usage, self.answered_by)


def assemble(deltas: Iterable[StreamDelta]) -> Assembled:
    """Text joined, tool-call fragments merged by index (id, type and name from the first), the last finish,
    usage and answered_by seen."""
    out = Assembled()
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        out.deltas.append(delta)
        if delta.content is not None:
            out.content = (out.content or "") + delta.content
        for part in delta.tool_calls or []:
            call = calls.setdefault(part["index"], {"function": {"name": "", "arguments": ""}})
            for key in ("id", "type"):
                if key in part:
                    call[key] = part[key]
            function = part.get("function") or {}
            call["function"]["name"] += function.get("name", "")
            call["function"]["arguments"] += function.get("arguments", "")
        out.finish_reason = delta.finish_reason or out.finish_reason
        out.usage = delta.usage or out.usage
        out.answered_by = delta.answered_by or out.answered_by
    if calls:
        ordered = [calls[i] for i in sorted(calls)]
        out.tool_calls = [{"id": c["id"], "type": c["type"], "function": c["function"]} for c in ordered]
    return out


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether `check` comes true within `seconds` (for what another thread does, such as a server's write)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()
