"""HTTP plumbing shared by the OpenAI-compatible and Anthropic adapters: one urllib3 pool per process,
timeouts from the request's deadline, and the status codes every HTTP API uses mapped to typed errors.

urllib3 retries nothing here: the gateway owns retries and fallback, and a hidden retry would spend the
deadline twice.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from llm_router.providers.base import (
    ContentFiltered,
    ContextWindowExceeded,
    Deadline,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    RetryableError,
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
    if deadline.expired:
        raise RetryableError(f"{label}: no time left for the call", kind="timeout")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        response = (http or pool()).request(
            "POST",
            url,
            body=body,
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
            timeout=timeout_for(deadline),
            retries=False,
            redirect=False,
        )
    except NewConnectionError:
        # Checked first: urllib3 makes it a subclass of its connect-timeout error, but a refused connection
        # is not a timeout.
        raise RetryableError(f"{label}: connection refused", kind="connection") from None
    except TransportTimeout:
        raise RetryableError(f"{label}: timed out", kind="timeout") from None
    except HTTPError as exc:
        # Connection refused or reset, dropped mid-response, TLS failures: the message is the exception type
        # only, as urllib3's text includes the URL.
        raise RetryableError(f"{label}: connection failed ({type(exc).__name__})", kind="connection") from None
    response_headers = {k.lower(): v for k, v in response.headers.items()}
    return HttpResult(response.status, response_headers, _parse(response.data))


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


def endpoint(base_url: str, path: str) -> str:
    """`base_url` joined with `path`, one slash between them."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")
