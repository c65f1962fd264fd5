"""Amazon Bedrock through the Converse API (botocore): OpenAI messages -> Converse and back, for every model kind.

`model_id` in the catalog may be any identifier Converse accepts, and is passed as is:

- a foundation model id: `amazon.nova-micro-v1:0`
- a cross-region inference profile id: `eu.anthropic.claude-sonnet-4-5-20250929-v1:0`, `us.`..., `global.`...
- an application inference profile ARN: `arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/abc`
- a prompt router ARN: `arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1`; the model
  the router picked is reported from `trace.promptRouter.invokedModelId`.

The client's region is the catalog entry's `region` (else the region in an ARN model id, else the environment's).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import TimeoutError as TransportTimeout

from llm_router.providers import formats, http
from llm_router.providers.base import (
    STREAM_IDLE_SECONDS,
    ContextWindowExceeded,
    Deadline,
    Embeddings,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    ProviderResponse,
    RetryableError,
    StreamDelta,
    Usage,
    while_waiting,
)
from llm_router.routing.features import estimate_tokens
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest, ImagePart, Message, TextPart
from llm_router.stores.aws import new_client

# Read timeouts are rounded down to one of these (seconds), so a few clients per region serve every deadline:
# botocore fixes the read timeout when a client is created.
TIMEOUT_BUCKETS = (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 45, 60, 90, 120, 300)
CONNECT_TIMEOUT_SECONDS = 2.0
RETRYABLE_CODES = {
    "ThrottlingException": "throttle",
    "ServiceQuotaExceededException": "throttle",
    "TooManyRequestsException": "throttle",
    "ServiceUnavailableException": "unavailable",
    "InternalServerException": "server_error",
    "ModelTimeoutException": "timeout",
    "ModelNotReadyException": "model_not_ready",
    "ModelErrorException": "model_error",
    # Raised inside a ConverseStream event stream when the model fails after the stream began.
    "ModelStreamErrorException": "model_error",
}
# Wrong permissions, credentials, model id or region: configuration errors the gateway counts and falls back from.
CONFIG_CODES = {
    "AccessDeniedException": "auth",
    "UnrecognizedClientException": "auth",
    "ExpiredTokenException": "auth",
    "InvalidSignatureException": "auth",
    "ResourceNotFoundException": "not_found",
}
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# The model produced output Converse could not parse: a model hiccup that another try usually fixes.
MALFORMED_STOP_REASONS = frozenset({"malformed_model_output", "malformed_tool_use"})
S3_IMAGE_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}

ClientFactory = Callable[[str | None, float], Any]


def timeout_bucket(remaining: float) -> float:
    """The largest bucket that ends before the deadline (at least the smallest bucket)."""
    fitting = [b for b in TIMEOUT_BUCKETS if b <= remaining]
    return float(fitting[-1] if fitting else TIMEOUT_BUCKETS[0])


class BedrockProvider:
    """Calls `bedrock-runtime` Converse; one client per (region, timeout bucket), created lazily and shared."""

    name = "bedrock"

    def __init__(
        self, client_factory: ClientFactory | None = None, *, stream_idle_seconds: float = STREAM_IDLE_SECONDS
    ) -> None:
        self._factory = client_factory or _new_client
        self._idle = stream_idle_seconds
        self._clients: dict[tuple[str | None, float], Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str | None, read_timeout: float) -> Any:
        key = (region, timeout_bucket(read_timeout))
        found = self._clients.get(key)
        if found is None:
            with self._lock:
                found = self._clients.get(key)
                if found is None:
                    found = self._clients[key] = self._factory(*key)
        return found

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        params = self.converse_params(request, model)
        if deadline.expired:
            raise RetryableError(f"{model.id}: no time left for the call", kind="timeout")
        client = self.client(region_for(model), deadline.remaining())
        with _call_errors(model):
            response = client.converse(**params)
        return self.parse(response, model, json_tool=formats.json_schema_tool(request, model) is not None)

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        """ConverseStream; the client's read timeout fits the deadline until the first delta, then each read of
        the event stream waits at most the idle timeout."""
        params = self.converse_params(request, model)
        if deadline.expired:
            raise RetryableError(f"{model.id}: no time left for the call", kind="timeout")
        client = self.client(region_for(model), deadline.remaining())
        with _call_errors(model):
            stream = client.converse_stream(**params)["stream"]
        while_waiting()
        translator = StreamTranslator(model, json_tool=formats.json_schema_tool(request, model) is not None)
        events = iter(stream)
        started = False
        try:
            while True:
                if not started and deadline.expired:
                    raise RetryableError(f"{model.id}: no answer before the deadline", kind="timeout")
                with _call_errors(model):
                    event = next(events, None)
                if event is None:
                    break
                delta = translator.translate(event)
                if delta is not None:
                    if not started:
                        started = True
                        http.set_read_timeout(getattr(stream, "_raw_stream", None), self._idle)
                    yield delta
            if not translator.stopped:
                raise RetryableError(f"{model.id}: the stream ended before the answer did", kind="connection")
        finally:
            stream.close()

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        """InvokeModel with the model family's body: Amazon Titan takes one text per call, Cohere a batch."""
        if deadline.expired:
            raise RetryableError(f"{model.id}: no time left for the call", kind="timeout")
        client = self.client(region_for(model), deadline.remaining())
        if "cohere." in model.model_id:
            body: dict[str, Any] = {"texts": texts, "input_type": "search_document", "embedding_types": ["float"]}
            if dimensions is not None:
                body["output_dimension"] = dimensions
            answer, tokens = _invoke(client, model, body)
            raw = answer.get("embeddings")
            vectors = raw.get("float") if isinstance(raw, dict) else raw
            if not isinstance(vectors, list):
                raise RetryableError(f"{model.id}: the answer had no embeddings", kind="malformed_response")
            if tokens is None:
                return Embeddings(vectors, sum(estimate_tokens(t) for t in texts), estimated=True)
            return Embeddings(vectors, tokens)
        vectors, total = [], 0
        for text in texts:
            body = {"inputText": text, **({"dimensions": dimensions} if dimensions is not None else {})}
            answer, tokens = _invoke(client, model, body)
            if not isinstance(answer.get("embedding"), list):
                raise RetryableError(f"{model.id}: the answer had no embedding", kind="malformed_response")
            vectors.append(answer["embedding"])
            total += int(answer.get("inputTextTokenCount") or tokens or estimate_tokens(text))
        return Embeddings(vectors, total)

    # -- request ---------------------------------------------------------------------------------------------
    @staticmethod
    def converse_params(request: ChatCompletionRequest, model: ModelSpec) -> dict[str, Any]:
        """Keyword arguments of `converse` for `request`."""
        messages = formats.alternating_turns(request, _blocks)
        params: dict[str, Any] = {"modelId": model.model_id, "messages": messages}
        system = formats.system_prompt(request, model)
        if system:
            params["system"] = [{"text": system}]
        inference: dict[str, Any] = {}
        limit = request.output_token_limit or model.max_output_tokens
        if limit is not None:
            inference["maxTokens"] = min(limit, model.max_output_tokens or limit)
        if request.temperature is not None:
            inference["temperature"] = formats.clamp_temperature(request.temperature)
        if request.top_p is not None:
            inference["topP"] = request.top_p
        stops = formats.stop_sequences(request)
        if stops:
            inference["stopSequences"] = stops
        if inference:
            params["inferenceConfig"] = inference
        tool_config = _tool_config(request, model, messages)
        if tool_config:
            params["toolConfig"] = tool_config
        return params

    # -- response --------------------------------------------------------------------------------------------
    @staticmethod
    def parse(response: dict[str, Any], model: ModelSpec, *, json_tool: bool = False) -> ProviderResponse:
        """The router's response from a Converse response; with `json_tool`, the forced tool's input is the answer."""
        stop_reason = response.get("stopReason")
        if stop_reason == "model_context_window_exceeded":
            raise ContextWindowExceeded(f"{model.id}: the answer ran past the model's context window")
        if stop_reason in MALFORMED_STOP_REASONS:
            raise RetryableError(f"{model.id}: the model's output was malformed ({stop_reason})", kind="model_error")
        message = ((response.get("output") or {}).get("message")) or {}
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        json_answer: str | None = None
        for block in message.get("content") or []:
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                if json_tool and use.get("name") == formats.JSON_TOOL_NAME:
                    json_answer = json.dumps(use.get("input") if use.get("input") is not None else {})
                else:
                    calls.append(formats.tool_call(use["toolUseId"], use["name"], use.get("input")))
        usage = _usage(response.get("usage"))
        answered_by = ((response.get("trace") or {}).get("promptRouter") or {}).get("invokedModelId")
        if json_answer is not None:
            return ProviderResponse(json_answer, "stop", usage, answered_by=answered_by)
        finish = STOP_REASONS.get(str(stop_reason), "stop")
        if calls:
            finish = "tool_calls"
        return ProviderResponse(
            content="".join(texts) or None,
            finish_reason=finish,
            usage=usage,
            tool_calls=calls or None,
            answered_by=answered_by,
        )


class StreamTranslator:
    """ConverseStream events -> StreamDelta, mapping stop reasons, tool use, usage and the prompt router's pick as
    `parse` does. Tool calls are numbered among tool calls; with `json_tool`, the forced tool's input is text."""

    def __init__(self, model: ModelSpec, *, json_tool: bool) -> None:
        self._model = model
        self._json_tool = json_tool
        self._calls: dict[int, int] = {}  # content block index -> tool call index
        self._arguments: dict[int, bool] = {}  # tool call index -> any input fragment seen
        self._json_blocks: set[int] = set()
        self.stopped = False

    def translate(self, event: dict[str, Any]) -> StreamDelta | None:
        """The delta `event` carries, or None (messageStart, reasoning, block ends without a delta)."""
        if "contentBlockStart" in event:
            body = event["contentBlockStart"]
            return self._block_start(int(body.get("contentBlockIndex", 0)), (body.get("start") or {}).get("toolUse"))
        if "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            return self._block_delta(int(body.get("contentBlockIndex", 0)), body.get("delta") or {})
        if "contentBlockStop" in event:
            return self._block_stop(int(event["contentBlockStop"].get("contentBlockIndex", 0)))
        if "messageStop" in event:
            return self._message_stop(event["messageStop"].get("stopReason"))
        if "metadata" in event:
            metadata = event["metadata"]
            answered_by = ((metadata.get("trace") or {}).get("promptRouter") or {}).get("invokedModelId")
            usage = _usage(metadata.get("usage"))
            if usage is None and answered_by is None:
                return None
            return StreamDelta(usage=usage, answered_by=answered_by)
        return None

    def _block_start(self, index: int, use: dict[str, Any] | None) -> StreamDelta | None:
        if not use:
            return None
        if self._json_tool and use.get("name") == formats.JSON_TOOL_NAME:
            self._json_blocks.add(index)
            return None
        position = self._calls[index] = len(self._calls)
        self._arguments[position] = False
        function = {"name": str(use.get("name")), "arguments": ""}
        return StreamDelta(
            tool_calls=[{"index": position, "id": str(use.get("toolUseId")), "type": "function", "function": function}]
        )

    def _block_delta(self, index: int, delta: dict[str, Any]) -> StreamDelta | None:
        if delta.get("text"):
            return StreamDelta(content=str(delta["text"]))
        fragment = str((delta.get("toolUse") or {}).get("input") or "")
        if not fragment:
            return None  # reasoning, citations, empty pieces
        if index in self._json_blocks:
            return StreamDelta(content=fragment)
        if index not in self._calls:
            return None
        self._arguments[self._calls[index]] = True
        return StreamDelta(tool_calls=[{"index": self._calls[index], "function": {"arguments": fragment}}])

    def _block_stop(self, index: int) -> StreamDelta | None:
        # A tool called without input streams no fragments; `parse` would have said "{}".
        position = self._calls.get(index)
        if position is None or self._arguments[position]:
            return None
        self._arguments[position] = True
        return StreamDelta(tool_calls=[{"index": position, "function": {"arguments": "{}"}}])

    def _message_stop(self, stop_reason: Any) -> StreamDelta:
        if stop_reason == "model_context_window_exceeded":
            raise ContextWindowExceeded(f"{self._model.id}: the answer ran past the model's context window")
        if stop_reason in MALFORMED_STOP_REASONS:
            raise RetryableError(
                f"{self._model.id}: the model's output was malformed ({stop_reason})", kind="model_error"
            )
        self.stopped = True
        if self._json_blocks:
            return StreamDelta(finish_reason="stop")
        return StreamDelta(finish_reason="tool_calls" if self._calls else STOP_REASONS.get(str(stop_reason), "stop"))


def _invoke(client: Any, model: ModelSpec, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """One InvokeModel call: the parsed answer and the input token count Bedrock reports in a header."""
    with _call_errors(model):
        response = client.invoke_model(
            modelId=model.model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
        answer = json.loads(response["body"].read())
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    count = str(headers.get("x-amzn-bedrock-input-token-count") or "")
    return (answer if isinstance(answer, dict) else {}), int(count) if count.isdigit() else None


def region_for(model: ModelSpec) -> str | None:
    """The catalog region, else the region inside an ARN model id, else None (the environment's region)."""
    if model.region:
        return model.region
    if model.model_id.startswith("arn:"):
        parts = model.model_id.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _new_client(region: str | None, read_timeout: float) -> Any:
    config = Config(
        # One attempt: the gateway retries once with jitter and then falls back; SDK retries on top would
        # multiply the calls and run past the request's deadline.
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=min(CONNECT_TIMEOUT_SECONDS, read_timeout),
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )
    return new_client("bedrock-runtime", region_name=region, config=config)


@contextlib.contextmanager
def _call_errors(model: ModelSpec) -> Iterator[None]:
    """botocore's failures, and urllib3's while an event stream is read, as typed errors."""
    try:
        yield
    except ClientError as exc:  # includes EventStreamError, an exception event inside a stream
        raise _client_error(exc, model) from None
    except (ReadTimeoutError, ConnectTimeoutError, TransportTimeout):
        raise RetryableError(f"{model.id}: Bedrock timed out", kind="timeout") from None
    except (NoCredentialsError, PartialCredentialsError):
        raise ProviderAuthError(f"{model.id}: no AWS credentials for Bedrock") from None
    except ParamValidationError as exc:
        raise InvalidRequest(f"{model.id}: {http.short(exc)}") from None
    except (BotoCoreError, TransportError, OSError) as exc:
        raise RetryableError(f"{model.id}: Bedrock call failed ({type(exc).__name__})", kind="connection") from None


def _client_error(exc: ClientError, model: ModelSpec) -> ProviderError:
    error = exc.response.get("Error") or {}
    code = str(error.get("Code") or "")
    # Exception events in a stream are named like their members (`throttlingException`).
    code = code[:1].upper() + code[1:]
    message = http.short(error.get("Message") or code)
    metadata = exc.response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    text = f"{model.id}: {code}: {message}" if message != code else f"{model.id}: {code}"
    if code in RETRYABLE_CODES:
        headers = {k.lower(): str(v) for k, v in (metadata.get("HTTPHeaders") or {}).items()}
        return RetryableError(
            text, status=status, kind=RETRYABLE_CODES[code], retry_after=http.retry_after_seconds(headers)
        )
    if code in CONFIG_CODES:
        auth = ProviderAuthError(text, status=status)
        auth.kind = CONFIG_CODES[code]
        return auth
    if code == "ValidationException" and http.mentions_context_overflow(message):
        # Converse has no error code of its own for an oversized prompt; its message is the only signal.
        return ContextWindowExceeded(text, status=status)
    if code == "ValidationException" or (status is not None and 400 <= status < 500):
        return InvalidRequest(text, status=status)
    return RetryableError(text, status=status, kind="server_error")


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        parts = [_part(p) for p in formats.content_parts(message)]
        # A tool result needs at least one content block; an empty tool output is still an answer.
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": parts or [{"text": "(empty)"}]}}]
    blocks = [_part(p) for p in formats.content_parts(message)]
    for call in message.tool_calls or []:
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.id,
                    "name": call.function.name,
                    "input": formats.tool_arguments(call.function.arguments, call.function.name),
                }
            }
        )
    return blocks


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    url = part.image_url.url
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower()
        if extension not in S3_IMAGE_FORMATS:
            raise InvalidRequest(f"the image {url!r} has no known image extension (png, jpg, jpeg, gif, webp)")
        return {"image": {"format": S3_IMAGE_FORMATS[extension], "source": {"s3Location": {"uri": url}}}}
    if url.startswith(("http://", "https://")):
        raise InvalidRequest("Bedrock does not fetch image URLs: send images as base64 data URLs or s3:// URIs")
    image = formats.parse_data_url(url)
    return {"image": {"format": image.format, "source": {"bytes": image.data}}}


def _tool_config(
    request: ChatCompletionRequest, model: ModelSpec, messages: list[dict[str, Any]]
) -> dict[str, Any] | None:
    forced = formats.json_schema_tool(request, model)
    if forced is not None:
        name, description, schema = forced
        return {
            "tools": [{"toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema}}}],
            "toolChoice": {"tool": {"name": name}},
        }
    if not request.tools:
        return None
    history_has_tools = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if request.tool_choice == "none" and not history_has_tools:
        return None
    tools = []
    for tool in request.tools:
        spec: dict[str, Any] = {
            "name": tool.function.name,
            "inputSchema": {"json": tool.function.parameters or {"type": "object", "properties": {}}},
        }
        if tool.function.description:
            spec["description"] = tool.function.description
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    # Converse has no "none" choice: with tool history present the tools stay declared and the choice is left out.
    if request.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif request.tool_choice is not None and not isinstance(request.tool_choice, str):
        config["toolChoice"] = {"tool": {"name": request.tool_choice.function.name}}
    elif request.tool_choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict) or "inputTokens" not in raw:
        return None
    # Converse's inputTokens excludes cache reads and writes (totalTokens adds them), as the router's Usage does.
    return Usage(
        input_tokens=int(raw.get("inputTokens") or 0),
        output_tokens=int(raw.get("outputTokens") or 0),
        cache_read_tokens=int(raw.get("cacheReadInputTokens") or 0),
        cache_write_tokens=int(raw.get("cacheWriteInputTokens") or 0),
    )
