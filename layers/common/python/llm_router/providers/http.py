"""HTTP plumbing shared by the OpenAI-compatible and Anthropic adapters: one urllib3 pool per process,
timeouts from the request's deadline, and the status codes every HTTP API uses mapped to typed errors.

urllib3 retries nothing here: the gateway owns retries and fallback, and a hidden retry would spend the
deadline twice.
"""

from __future__ import annotations

import codecs
import contextlib
import email.utils
import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as TransportTimeout

from llm_router.providers.base import (
    STREAM_IDLE_SECONDS,
    ContentFiltered,
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    RetryableError,
    while_waiting,
)
from llm_router.schemas.catalog import ModelSpec

CONNECT_TIMEOUT_SECONDS = 3.0
# Provider messages are returned to callers and logged; long ones are cut so a whole prompt never echoes back.
MAX_MESSAGE_CHARS = 300
# Statuses that say "try again": request timeout, conflict, rate limit, and every server-side failure
# (Anthropic uses 529 for "overloaded").
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
AUTH_STATUSES = frozenset({401, 402, 403})
# Not found is a configuration error (wrong base_url or model name), not the caller's fault.
NOT_FOUND_STATUSES = frozenset({404})


@cache
def pool() -> urllib3.PoolManager:
    """The process-wide connection pool (warm invocations reuse its connections)."""
    return urllib3.PoolManager(num_pools=16, maxsize=16, retries=False, block=False)


def timeout_for(deadline: Deadline) -> urllib3.Timeout:
    """Connect and read timeouts that end no later than the request's deadline."""
    remaining = max(deadline.remaining(), 0.001)
    return urllib3.Timeout(total=remaining, connect=min(CONNECT_TIMEOUT_SECONDS, remaining), read=remaining)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was empty or not JSON


def post_json(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    deadline: Deadline,
    *,
    label: str,
    http: urllib3.PoolManager | None = None,
) -> HttpResult:
    """POST `payload` as JSON; transport failures become RetryableError, the status is left to the caller.

    `label` names the model in error messages; the URL and headers (which hold the key) never appear in them.
    """
    with transport_errors(label):
        response = _post(url, payload, headers, deadline, label=label, http=http, accept="application/json")
    return HttpResult(response.status, _lower(response.headers), _parse(response.data))


def _post(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    deadline: Deadline,
    *,
    label: str,
    http: urllib3.PoolManager | None,
    accept: str,
    preload_content: bool = True,
) -> urllib3.BaseHTTPResponse:
    if deadline.expired:
        raise RetryableError(f"{label}: no time left for the call", kind="timeout")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return (http or pool()).request(
        "POST",
        url,
        body=body,
        headers={"Content-Type": "application/json", "Accept": accept, **headers},
        timeout=timeout_for(deadline),
        retries=False,
        redirect=False,
        preload_content=preload_content,
    )


@contextlib.contextmanager
def transport_errors(label: str) -> Iterator[None]:
    """urllib3's transport failures as RetryableError; messages name the exception type only, as urllib3's text
    includes the URL."""
    try:
        yield
    except (HTTPError, OSError) as exc:
        raise transport_error(label, exc) from None


def transport_error(label: str, exc: HTTPError | OSError) -> RetryableError:
    """One mapping for `transport_errors` and for the stream reads, which catch without a context manager."""
    if isinstance(exc, NewConnectionError):
        # Checked first: urllib3 makes it a subclass of its connect-timeout error, but a refused connection
        # is not a timeout.
        return RetryableError(f"{label}: connection refused", kind="connection")
    if isinstance(exc, (TransportTimeout, TimeoutError)):
        return RetryableError(f"{label}: timed out", kind="timeout")
    # Connection refused or reset, dropped mid-response, TLS failures.
    return RetryableError(f"{label}: connection failed ({type(exc).__name__})", kind="connection")


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for reading events whose shape is not guaranteed)."""
    return value if isinstance(value, dict) else {}


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _parse(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def retry_after_seconds(headers: dict[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def short(message: Any) -> str:
    """A provider's error message, made safe to show: a string, one line, cut to a readable length."""
    text = " ".join(str(message or "").split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def redact(text: str, secret: str | None) -> str:
    """`text` with `secret` masked (some APIs echo part of a wrong key in their error message)."""
    if secret and len(secret) >= 8:
        text = text.replace(secret, "***")
    return text


def status_error(status: int, message: str, headers: dict[str, str], *, kind: str | None = None) -> ProviderError:
    """The typed error for an HTTP error status, apart from request-specific refinements done by the adapter."""
    if status in RETRYABLE_STATUSES or status >= 500:
        default_kind = "throttle" if status == 429 else "timeout" if status == 408 else "server_error"
        return RetryableError(
            message, status=status, retry_after=retry_after_seconds(headers), kind=kind or default_kind
        )
    if status in AUTH_STATUSES or status in NOT_FOUND_STATUSES:
        return ProviderAuthError(message, status=status)
    return InvalidRequest(message, status=status)


def request_error(message: str, status: int, *, context_overflow: bool, content_filtered: bool) -> ProviderError:
    """A 4xx caused by the request: a context overflow, a content refusal, or plainly invalid."""
    if context_overflow:
        return ContextWindowExceeded(message, status=status)
    if content_filtered:
        return ContentFiltered(message, status=status)
    return InvalidRequest(message, status=status)


# Phrases the APIs use when the prompt does not fit (OpenAI-compatible servers without an error code, Anthropic,
# Bedrock's ValidationException). The adapters look for them only when the API has no code for it.
CONTEXT_OVERFLOW_PHRASES = (
    "context length",
    "context window",
    "context_length",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "too many tokens",
    "exceeds the maximum number of tokens",
)


def mentions_context_overflow(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in CONTEXT_OVERFLOW_PHRASES)


class KeySource(Protocol):
    def get(self, name: str) -> str | None: ...


def api_key(model: ModelSpec, keys: KeySource) -> str | None:
    """The model's API key, or None when it needs none (no `api_key_ref`: local vLLM, Ollama...)."""
    if not model.api_key_ref:
        return None
    key = keys.get(model.api_key_ref)
    if not key:
        raise ProviderAuthError(f"{model.id}: no API key found under {model.api_key_ref!r}")
    return key


def endpoint(base_url: str, path: str, *, allow_loopback_http: bool = False) -> str:
    """`base_url` joined with `path`, one slash between them; https only (plain http to loopback in local mode),
    so a key never travels in clear text and a Config-table edit cannot point a key at an arbitrary http host."""
    if not is_https_or_loopback(base_url, allow_loopback_http=allow_loopback_http):
        raise ProviderAuthError(
            f"base_url {base_url!r} is refused: it must be https (plain http only to loopback in local mode)"
        )
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def is_https_or_loopback(url: str, *, allow_loopback_http: bool) -> bool:
    parsed = urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return True
    return allow_loopback_http and parsed.scheme == "http" and is_loopback_host(parsed.hostname or "")


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- streaming -----------------------------------------------------------------------------------------------
READ_SIZE = 65536
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions, or a trailer field
# After the last event, the rest of the body (the chunked encoding's end) is read this long at most, so the
# connection can go back to the pool; a server that holds it open longer loses it.
DRAIN_SECONDS = 1.0
_LINE_END = re.compile(r"\r\n|\r|\n")


class ServerSentEvent(NamedTuple):
    event: str
    data: str


# ServerSentEvent((event, data)) without a Python frame: the parser makes one per event.
_new_event = partial(tuple.__new__, ServerSentEvent)


class SSEParser:
    """Server-sent events from bytes as they arrive: lines split across reads, CRLF/CR/LF line ends, comments,
    multi-line data (joined with newlines), UTF-8 split across reads. `id` and `retry` are of no use here."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._whole = True  # the decoder holds no part of a character: a read may be decoded on its own
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events that `chunk` completes."""
        if self._whole:
            try:
                text = chunk.decode()  # nearly every read: whole characters only
            except UnicodeDecodeError:
                text = self._incremental(chunk)
        else:
            text = self._incremental(chunk)
        self._buffer += text
        return self._lines(final=False)

    def _incremental(self, chunk: bytes) -> str:
        """A character split across reads, or bytes that are not UTF-8 (replaced): the decoder keeps what it must."""
        text: str = self._decoder.decode(chunk)
        self._whole = not self._decoder.getstate()[0]
        return text

    def close(self) -> list[ServerSentEvent]:
        """The events left when the body ends; a last event without its blank line still counts."""
        self._buffer += self._decoder.decode(b"", final=True)
        events = self._lines(final=True)
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = ""
        self._line("", events)
        return events

    def _lines(self, *, final: bool) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        buffer = self._buffer
        if "\r" not in buffer:
            # Line feeds only, as nearly every server sends: split at once, the unfinished line stays buffered.
            *lines, self._buffer = buffer.split("\n")
            for line in lines:
                if line[:6] == "data: ":  # nearly every line: taken in here, without a call
                    self._data.append(line[6:])
                else:
                    self._line(line, events)
            return events
        start = 0
        while (match := _LINE_END.search(buffer, start)) is not None:
            if match.group() == "\r" and match.end() == len(buffer) and not final:
                break  # a CR at the end of a read may be the first half of a CRLF
            self._line(buffer[start : match.start()], events)
            start = match.end()
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        """Take in one line; a blank line ends the event under way, appended to `events` when it has data."""
        if not line:
            if self._data:
                events.append(_new_event((self._event or "message", "\n".join(self._data))))
            self._event, self._data = "", []
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


class EventSource:
    """An open server-sent-events response.

    Until `started` is set each read waits no longer than the deadline allows (the deadline bounds the time to the
    first delta); after it, each read waits at most `idle_seconds`. `close()` returns a finished connection to
    the pool and closes an unfinished one, which is how an upstream learns the caller went away.
    """

    def __init__(
        self, response: urllib3.BaseHTTPResponse, deadline: Deadline, *, label: str, idle_seconds: float
    ) -> None:
        self._response = response
        self._deadline = deadline
        self._label = label
        self._idle = idle_seconds
        # Set by the reader once the first delta went out: from then on reads wait up to the idle timeout
        # instead of the deadline.
        self.started = False
        self._ended = False
        self._sock = _socket_of(response)
        self._timeout: float | None = None
        # Bytes as they arrived unless the body is compressed: urllib3's decoding (a decoder lookup and a buffer
        # round trip on every read) only where there is something to decode.
        encoding = str(response.headers.get("content-encoding") or "identity").strip().lower()
        self._decode = encoding != "identity"
        # A chunked body with nothing to decode (nearly every event stream) is read here, straight from the
        # connection's buffered socket file: each read is then three C calls instead of a dozen Python frames of
        # urllib3 and http.client, which matter most just after a long wait for the model.
        self._body = None if self._decode else ChunkedBody.of(response)

    def __iter__(self) -> Iterator[ServerSentEvent]:
        parser = SSEParser()
        while_waiting()
        while True:
            data = self._read(self._wait())
            if not data:
                self._ended = True
                yield from parser.close()
                return
            yield from parser.feed(data)

    def _wait(self) -> float:
        if self.started:
            return self._idle
        if self._deadline.expired:
            raise RetryableError(f"{self._label}: no answer before the deadline", kind="timeout")
        return self._deadline.remaining()

    def _read(self, timeout: float) -> bytes:
        if timeout != self._timeout and self._sock is not None:
            self._sock.settimeout(max(timeout, 0.001))
            self._timeout = timeout
        try:
            if self._body is not None:
                return self._body.read()
            return self._response.read1(READ_SIZE, decode_content=self._decode)
        except (HTTPError, OSError) as exc:
            raise transport_error(self._label, exc) from None

    def close(self, *, drain: bool = False) -> None:
        """Release the connection: with `drain` (the last event was seen), read the rest briefly for reuse."""
        if drain and not self._ended:
            try:
                while self._read(min(DRAIN_SECONDS, self._idle)):
                    pass
                self._ended = True
            except ProviderError:
                pass
        if not self._ended:
            self._response.close()
        elif self._body is not None:
            self._body.finish()
        self._response.release_conn()


class ChunkedBody:
    """A chunked HTTP/1.1 body read from the connection's buffered socket file (`http.client`'s framing undone
    here): `read()` returns what has arrived of the current chunk, as soon as any has, and b"" after the last
    chunk and its trailers. `finish()` then closes the response object the way `http.client` does at the end of
    any body, which leaves the connection open for the pool."""

    __slots__ = ("_crlf", "_fp", "_left", "_source")

    def __init__(self, source: Any) -> None:
        self._source = source  # the http.client response under urllib3's
        self._fp = source.fp
        self._left = 0  # bytes of the current chunk not read yet
        self._crlf = False  # the CRLF after a chunk's data, read with the next size line (never waited for alone)

    @classmethod
    def of(cls, response: Any) -> ChunkedBody | None:
        """The reader for `response`, or None when it is not a chunked body nothing has been read from yet (the
        caller then reads through urllib3)."""
        source = getattr(response, "_fp", None)
        fp = getattr(source, "fp", None)
        if fp is None or getattr(source, "chunked", False) is not True or getattr(source, "chunk_left", 0) is not None:
            return None
        if not (hasattr(fp, "read1") and hasattr(fp, "readline")):
            return None
        return cls(source)

    def read(self) -> bytes:
        fp, left = self._fp, self._left
        if not left:
            if self._crlf:
                self._line()
                self._crlf = False
            line = self._line()
            try:
                left = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError(f"not a chunk size: {line[:40]!r}") from None
            if left <= 0:
                while self._line().strip():  # trailer fields, up to the blank line that ends the body
                    pass
                self._left = 0
                return b""
        data = fp.read1(min(left, READ_SIZE))
        if not data:
            raise ProtocolError("the connection closed inside a chunk")
        left -= len(data)
        self._left = left
        self._crlf = not left
        return data

    def _line(self) -> bytes:
        line: bytes = self._fp.readline(MAX_CHUNK_LINE + 1)
        if not line.endswith(b"\n"):
            raise ProtocolError(
                "the connection closed inside the chunked framing"
                if len(line) <= MAX_CHUNK_LINE
                else "a chunk line is too long"
            )
        return line

    def finish(self) -> None:
        self._source.close()


def set_read_timeout(response: Any, seconds: float) -> None:
    """Give the response's socket a new read timeout (urllib3 fixes one when the request is sent)."""
    sock = _socket_of(response)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _socket_of(response: Any) -> Any:
    return getattr(getattr(response, "connection", None), "sock", None)


def open_event_stream(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    deadline: Deadline,
    *,
    label: str,
    error: Callable[[HttpResult], ProviderError],
    http: urllib3.PoolManager | None = None,
    idle_seconds: float = STREAM_IDLE_SECONDS,
) -> EventSource:
    """POST `payload` and return its event stream once the status line says 2xx; an error status becomes
    `error(result)`, with the error body read in full, so failures before the stream match `post_json`'s."""
    with transport_errors(label):
        response = _post(
            url, payload, headers, deadline, label=label, http=http, accept="text/event-stream", preload_content=False
        )
    if response.status < 300:
        return EventSource(response, deadline, label=label, idle_seconds=idle_seconds)
    try:
        with transport_errors(label):
            data = response.read()
    finally:
        response.release_conn()
    raise error(HttpResult(response.status, _lower(response.headers), _parse(data)))
