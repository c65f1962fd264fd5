"""Local mode's replay worker: polls the emulated fallback queue and hands batches to the real replay handler,
the way Lambda's SQS event source does (deleting what succeeded, leaving reported failures on the queue)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from llm_router.observability import logger

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The SQS event record Lambda would deliver for a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: str(v) for k, v in (message.get("Attributes") or {}).items()},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1",
    }


def drain_once(sqs: Any, queue_url: str, handler: Handler, *, wait_seconds: int = 0, batch_size: int = 10) -> int:
    """Receive one batch, run it through `handler`, delete the successes; returns how many were received."""
    response = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
    )
    messages = response.get("Messages", [])
    if not messages:
        return 0
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result = handler({"Records": [lambda_record(m, arn) for m in messages]}, None)
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    return len(messages)


class ReplayThread:
    """Runs `drain_once` in a loop until stopped."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, poll_seconds: int = 1) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-router-replay", daemon=True)

    def start(self) -> ReplayThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._poll + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if drain_once(self._sqs, self._queue_url, self._handler, wait_seconds=self._poll) == 0:
                    self._stop.wait(0.2)
            except Exception as exc:  # noqa: BLE001 - keep polling; the emulated queue may be shutting down
                logger.warning("local_replay_error", error=type(exc).__name__)
                self._stop.wait(1)
