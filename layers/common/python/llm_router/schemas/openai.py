"""The OpenAI Chat Completions wire format: what callers send and what they get back.

Unknown request fields are kept (`extra="allow"`): PII detection reads them, and a provider receives those its
allow-list names (see `providers.openai_compat`); everything the router itself reads is validated here, strictly:
OpenAI refuses `"temperature": "1"`, so the router does too, and NaN or Infinity are not JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class RequestPart(BaseModel):
    """Base of what callers send: no coercion from strings or booleans, finite numbers only."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class TextPart(RequestPart):
    type: Literal["text"]
    text: str


class ImageURL(RequestPart):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(RequestPart):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(RequestPart):
    name: str
    arguments: str = "{}"


class ToolCall(RequestPart):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(RequestPart):
    """One chat message. `developer` is OpenAI's newer name for `system`."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self

    def text(self) -> str:
        """The message's text parts joined by newlines (images left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    def has_images(self) -> bool:
        return isinstance(self.content, list) and any(isinstance(p, ImagePart) for p in self.content)


class FunctionDef(RequestPart):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(RequestPart):
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(RequestPart):
    name: str


class NamedToolChoice(RequestPart):
    type: Literal["function"] = "function"
    function: NamedFunction


class JsonSchemaFormat(RequestPart):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(RequestPart):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs json_schema")
        return self


class StreamOptions(RequestPart):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class ChatCompletionRequest(RequestPart):
    """`POST /v1/chat/completions` body."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    # Only models with the `logprobs` capability (OpenAI-compatible APIs) return them; others are not candidates.
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    n: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @property
    def output_token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def needs_json(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    def uses_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def has_images(self) -> bool:
        return any(m.has_images() for m in self.messages)

    def upstream_strings(self) -> Iterator[str]:
        """Every string of the request that a provider may receive: message text, names, tool calls and their
        arguments, tool definitions, response schemas, stop sequences and any field the schema does not name.

        PII detection reads these, so personal data placed outside the message text still counts. Image data
        URLs are left out (base64 is no text to scan; `has_images` decides what images mean to a PII policy).
        """
        dumped = self.model_dump(mode="json", exclude_none=True, by_alias=True, exclude={"model"})
        yield from _strings(dumped)


def _strings(value: Any) -> Iterator[str]:
    """The strings inside a JSON value, keys of unknown objects included, without recursion (a deep body cannot
    exhaust the stack)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.startswith("data:"):
                yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    logprobs: dict[str, Any] | None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    # Part of completion_tokens (and billed as output), as OpenAI reports them.
    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(BaseModel):
    """The non-streaming answer; `model` is the catalog id of the model that answered."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON body: absent optional fields left out, but the fields OpenAI's schema requires even when null
        (`logprobs`, `message.content`, `message.refusal`) always present, as typed clients demand."""
        body = self.model_dump(mode="json", exclude_none=True)
        for choice, raw in zip(self.choices, body["choices"], strict=True):
            raw["logprobs"] = choice.logprobs
            raw["message"]["content"] = choice.message.content
            raw["message"]["refusal"] = choice.message.refusal
        return body


class EmbeddingRequest(BaseModel):
    """`POST /v1/embeddings` body. Token-id arrays are refused: the router cannot know the model's tokenizer."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _no_empty_strings(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if len(texts) > 2048:
            raise ValueError("at most 2048 inputs")
        if any(not text for text in texts):
            raise ValueError("inputs must be non-empty strings")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    def routing_request(self) -> ChatCompletionRequest:
        """The texts as a chat request, so that rules (policies above all) decide about embeddings as about chat."""
        messages = [{"role": "user", "content": "\n".join(self.texts())}]
        return ChatCompletionRequest.model_validate({"model": self.model, "messages": messages, "user": self.user})
