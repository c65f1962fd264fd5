"""The SQS fallback queue: the whole request, its tenant, decision and error trail, for the replay worker."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from llm_router.stores.aws import client
from llm_router.stores.payload_store import PayloadStore

MESSAGE_VERSION = 1


class QueueUnavailableError(Exception):
    """The message could not be written; the caller must be told it was not queued."""


@dataclass
class QueuedRequest:
    """One message on the fallback queue."""

    request_id: str
    tenant: str
    mode: str  # "fallback" (every candidate failed) or "async" (Prefer: respond-async)
    body: dict[str, Any]
    decision: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    enqueued_at: float = field(default_factory=time.time)
    deadline_seconds: float = 0.0

    def envelope(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "request_id": self.request_id,
            "tenant": self.tenant,
            "mode": self.mode,
            "decision": self.decision,
            "errors": self.errors,
            "enqueued_at": self.enqueued_at,
            "deadline_seconds": self.deadline_seconds,
        }


class FallbackQueue:
    def __init__(
        self, queue_url: str, payloads: PayloadStore, *, inline_limit_bytes: int = 192_000, sqs: Any = None
    ) -> None:
        self.queue_url = queue_url
        self._payloads = payloads
        self._inline_limit = inline_limit_bytes
        self._sqs = sqs

    @property
    def _client(self) -> Any:
        return self._sqs or client("sqs")

    def send(self, request: QueuedRequest) -> None:
        """Write the message (large bodies go to the payload store first); raises QueueUnavailableError."""
        message = request.envelope()
        body = json.dumps(request.body, separators=(",", ":"))
        try:
            if len(body.encode()) > self._inline_limit:
                chunks = self._payloads.put(request.request_id, body.encode())
                message["body_ref"] = {"payload": request.request_id, "chunks": chunks}
            else:
                message["body"] = request.body
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # any failure to persist means "not queued", whatever its type
            raise QueueUnavailableError(type(exc).__name__) from exc

    def parse(self, raw: str) -> QueuedRequest:
        """The request in a message body, with its body fetched from the payload store when it is a pointer."""
        message = json.loads(raw)
        if "body_ref" in message:
            ref = message["body_ref"]
            body = json.loads(self._payloads.get(ref["payload"], int(ref["chunks"])))
        else:
            body = message["body"]
        return QueuedRequest(
            request_id=message["request_id"],
            tenant=message["tenant"],
            mode=message.get("mode", "fallback"),
            body=body,
            decision=message.get("decision") or {},
            errors=message.get("errors") or [],
            enqueued_at=float(message.get("enqueued_at", 0)),
            deadline_seconds=float(message.get("deadline_seconds", 0)),
        )

    def release(self, raw: str) -> None:
        """Delete a stored large body once its request has ended."""
        message = json.loads(raw)
        ref = message.get("body_ref")
        if ref:
            self._payloads.delete(ref["payload"], int(ref["chunks"]))
