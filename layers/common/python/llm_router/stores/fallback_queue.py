"""The SQS fallback queue: a message names a request and nothing else.

The router writes what a replay needs to the State table before the message goes out: the request record
(tenant, mode, decision, errors) and the body (`PayloadStore`). The replay worker reads the tenant from the
record, never from the message, so a principal that can send to the queue cannot run work as another tenant,
and neither the queue nor its dead-letter queue ever holds a prompt.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from llm_router.stores.aws import client
from llm_router.stores.payload_store import PayloadStore

MESSAGE_VERSION = 2


class QueueUnavailableError(Exception):
    """The message could not be written; the caller must be told it was not queued."""


@dataclass
class QueuedRequest:
    """A request on its way to the fallback queue (the record, the body and the message together)."""

    request_id: str
    tenant: str
    mode: str  # "fallback" (every candidate failed) or "async" (Prefer: respond-async)
    body: dict[str, Any]
    decision: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    enqueued_at: float = field(default_factory=time.time)
    deadline_seconds: float = 0.0


# What a message asks for: a request to answer (the default), or a shadow evaluation of an answered one.
REQUEST_KIND = "request"
SHADOW_KIND = "shadow"
SHADOW_PAYLOAD_PREFIX = "shadow"


@dataclass(frozen=True)
class Message:
    kind: str
    request_id: str


def parse_message(raw: str) -> Message:
    """What a message asks for and the request it names; raises ValueError for anything else."""
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("the message is not JSON") from None
    request_id = message.get("request_id") if isinstance(message, dict) else None
    if not isinstance(request_id, str) or not request_id.isalnum():
        raise ValueError("the message names no request id")
    kind = message.get("kind", REQUEST_KIND)
    if kind not in (REQUEST_KIND, SHADOW_KIND):
        raise ValueError(f"unknown message kind {kind!r}")
    return Message(kind, request_id)


def message_request_id(raw: str) -> str:
    """The request id a message names; raises ValueError for anything else."""
    return parse_message(raw).request_id


class FallbackQueue:
    def __init__(self, queue_url: str, payloads: PayloadStore, *, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self._payloads = payloads
        self._sqs = sqs

    @property
    def _client(self) -> Any:
        return self._sqs or client("sqs")

    def send(self, request: QueuedRequest) -> None:
        """Store the body in the State table, then send a message naming only the request (its record is written
        first, by the gateway); raises QueueUnavailableError."""
        body = json.dumps(request.body, separators=(",", ":")).encode()
        message = {"v": MESSAGE_VERSION, "request_id": request.request_id}
        try:
            self._payloads.put(request.request_id, body)
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # any failure to persist means "not queued", whatever its type
            raise QueueUnavailableError(type(exc).__name__) from exc

    def send_shadow(self, request_id: str, payload: dict[str, Any]) -> None:
        """Keep a shadow evaluation's prompt and answer in the State table and send a message naming only the
        request (the queue never holds a prompt); raises QueueUnavailableError."""
        data = json.dumps(payload, separators=(",", ":")).encode()
        message = {"v": MESSAGE_VERSION, "kind": SHADOW_KIND, "request_id": request_id}
        try:
            self._payloads.put(SHADOW_PAYLOAD_PREFIX + request_id, data)
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # any failure to persist means "not queued", whatever its type
            raise QueueUnavailableError(type(exc).__name__) from exc

    def body(self, request_id: str) -> dict[str, Any]:
        """The stored body of a queued request; LookupError when it is gone (expired or never written)."""
        return dict(json.loads(self._payloads.get_all(request_id)))

    def release(self, request_id: str) -> None:
        """Delete a queued request's stored body once the request has ended."""
        self._payloads.delete_all(request_id)

    def shadow_payload(self, request_id: str) -> dict[str, Any]:
        """A shadow evaluation's prompt and answer; LookupError when they are gone."""
        return dict(json.loads(self._payloads.get_all(SHADOW_PAYLOAD_PREFIX + request_id)))

    def release_shadow(self, request_id: str) -> None:
        self._payloads.delete_all(SHADOW_PAYLOAD_PREFIX + request_id)
