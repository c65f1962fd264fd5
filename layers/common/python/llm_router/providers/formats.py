"""Translation pieces every non-OpenAI adapter needs: system prompts, data-URL images, tool arguments, JSON mode.

JSON mode on APIs without a `response_format`: a JSON schema becomes a forced tool call whose input is the
answer (when the model can call tools and the request brings no tools of its own), otherwise an instruction in
the system prompt. A plain `json_object` request is always an instruction.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_router.providers.base import InvalidRequest
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest, ImagePart, Message, TextPart

SYSTEM_ROLES = ("system", "developer")
# The name of the tool that carries a JSON-schema answer; callers never see it.
JSON_TOOL_NAME = "json_response"
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no Markdown code fences."
IMAGE_MEDIA_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


@dataclass(frozen=True)
class DataImage:
    media_type: str
    data: bytes

    @property
    def format(self) -> str:
        """Bedrock's image format name (png, jpeg, gif, webp)."""
        return IMAGE_MEDIA_TYPES[self.media_type]

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


def parse_data_url(url: str) -> DataImage:
    """`data:image/png;base64,...` -> the image; anything else is the caller's error."""
    header, sep, payload = url.partition(",")
    if not url.startswith("data:") or not sep or not header.endswith(";base64"):
        raise InvalidRequest("images must be sent as base64 data URLs (data:image/png;base64,...) for this model")
    media_type = header[len("data:") : -len(";base64")].lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequest(f"image type {media_type or 'unknown'!r} is not supported (png, jpeg, gif, webp)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("an image data URL is not valid base64") from None
    return DataImage("image/jpeg" if media_type == "image/jpg" else media_type, data)


def system_prompt(request: ChatCompletionRequest, model: ModelSpec) -> str | None:
    """System and developer messages joined, plus the JSON-mode instruction when one is needed."""
    parts = [m.text() for m in request.messages if m.role in SYSTEM_ROLES and m.text()]
    instruction = json_instruction(request, model)
    if instruction:
        parts.append(instruction)
    return "\n\n".join(parts) or None


def conversation(request: ChatCompletionRequest) -> list[Message]:
    """The messages other than system prompts (APIs that take the system prompt apart)."""
    return [m for m in request.messages if m.role not in SYSTEM_ROLES]


def alternating_turns(
    request: ChatCompletionRequest, blocks_of: Callable[[Message], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The conversation as user/assistant turns of content blocks: tool results become user turns and
    same-role neighbours are merged (Anthropic and Bedrock Converse both require turns to alternate)."""
    turns: list[dict[str, Any]] = []
    for message in conversation(request):
        role = "assistant" if message.role == "assistant" else "user"
        blocks = blocks_of(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def content_parts(message: Message) -> list[TextPart | ImagePart]:
    """The message's content as a list of parts (a plain string is one text part); empty text left out."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [TextPart(type="text", text=message.content)] if message.content else []
    return [p for p in message.content if not (isinstance(p, TextPart) and not p.text)]


def tool_arguments(arguments: str, name: str) -> dict[str, Any]:
    """An OpenAI tool call's JSON `arguments` as the object the other APIs expect."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        raise InvalidRequest(f"the arguments of tool call {name!r} are not valid JSON") from None
    return value if isinstance(value, dict) else {"value": value}


def json_schema_tool(request: ChatCompletionRequest, model: ModelSpec) -> tuple[str, str, dict[str, Any]] | None:
    """(name, description, schema) of the forced tool that carries a JSON-schema answer, when one is used."""
    fmt = request.response_format
    if fmt is None or fmt.type != "json_schema" or fmt.json_schema is None:
        return None
    if "tools" not in model.capabilities or request.tools:
        return None
    schema = fmt.json_schema.schema_ or {"type": "object"}
    description = fmt.json_schema.description or f"Return the answer as {fmt.json_schema.name}."
    return JSON_TOOL_NAME, description, schema


def json_instruction(request: ChatCompletionRequest, model: ModelSpec) -> str | None:
    """The system-prompt instruction for JSON mode, when JSON mode is not carried by a forced tool."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text" or json_schema_tool(request, model) is not None:
        return None
    if fmt.type == "json_schema" and fmt.json_schema is not None and fmt.json_schema.schema_ is not None:
        schema = json.dumps(fmt.json_schema.schema_, separators=(",", ":"))
        return f"{JSON_OBJECT_INSTRUCTION} The object must match this JSON schema: {schema}"
    return JSON_OBJECT_INSTRUCTION


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """An OpenAI-shaped tool call from a tool-use block (`arguments` is serialized to a JSON string)."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments if arguments is not None else {})},
    }


def clamp_temperature(value: float | None) -> float | None:
    """OpenAI's temperature runs 0-2; Anthropic's and Bedrock's 0-1."""
    return None if value is None else min(value, 1.0)


def stop_sequences(request: ChatCompletionRequest) -> list[str] | None:
    if request.stop is None:
        return None
    return [request.stop] if isinstance(request.stop, str) else list(request.stop) or None
