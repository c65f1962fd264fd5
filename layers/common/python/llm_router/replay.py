"""The replay worker: answers what the fallback queue holds, with the same gateway logic as a live request.

Rules may have changed since the request was queued; the record keeps both decisions. A message names only the
request: the tenant and the body come from the State table, where the router wrote them, so a message sent by
anyone else cannot pick the tenant it runs as. A request whose models
still fail stays on the queue with a growing visibility back-off; on the receive numbered `MAX_RECEIVE_COUNT`
its record is marked `failed` and SQS moves the message to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from llm_router.errors import AllModelsFailedError, RouterError
from llm_router.gateway import Gateway, RequestContext
from llm_router.observability import logger
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.stores.fallback_queue import SHADOW_KIND, parse_message
from llm_router.stores.request_store import RequestRecord

MAX_VISIBILITY_SECONDS = 900


class StillFailingError(Exception):
    """Raised to leave the message on the queue (a partial batch failure)."""


class ReplayQueue(Protocol):
    """The fallback queue as the worker reads it (stores/fallback_queue.py): messages back into requests."""

    queue_url: str

    def body(self, request_id: str) -> dict[str, Any]:
        """The request body the router stored beside the message."""
        ...

    def release(self, request_id: str) -> None:
        """Drop what the request kept outside the queue (its body) once it has ended."""
        ...


class ReplayRecords(Protocol):
    """The queued requests' records (stores/request_store.py), which callers poll for the result."""

    def get(self, request_id: str) -> RequestRecord | None: ...

    def mark_running(self, request_id: str, receive_count: int) -> None: ...

    def mark_done(self, request_id: str, result: dict[str, Any], decision: dict[str, Any]) -> None: ...

    def mark_queued_again(
        self, request_id: str, errors: list[dict[str, Any]], decision: dict[str, Any] | None
    ) -> None: ...

    def mark_failed(self, request_id: str, errors: list[dict[str, Any]], decision: dict[str, Any] | None) -> None: ...


class ShadowWork(Protocol):
    """Shadow evaluation of an answered request (shadow.py); never raises."""

    def evaluate(self, request_id: str) -> None: ...


class Replayer:
    def __init__(
        self,
        gateway: Gateway,
        queue: ReplayQueue,
        requests: ReplayRecords,
        *,
        max_receive_count: int,
        backoff_seconds: float,
        sqs: Any,
        shadow: ShadowWork | None = None,
    ) -> None:
        self.gateway = gateway
        self.queue = queue
        self.requests = requests
        self.max_receive_count = max_receive_count
        self.backoff_seconds = backoff_seconds
        self._sqs = sqs
        self.shadow = shadow

    def process(self, record: SQSRecord) -> None:
        """Handle one message; raising leaves it on the queue for another try."""
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            message = parse_message(record.body)
        except ValueError as exc:
            logger.warning("replay_message_ignored", reason=str(exc))
            return  # not a message the router wrote: nothing to run
        request_id = message.request_id
        if message.kind == SHADOW_KIND:
            # Consumed whatever happens: shadow work is never retried into the dead-letter queue.
            if self.shadow is not None:
                self.shadow.evaluate(request_id)
            return
        existing = self.requests.get(request_id)
        if existing is None:
            logger.warning("replay_without_record", request_id=request_id)
            return  # no record the router wrote (expired, or a forged id): no tenant to run it as
        if existing.status in ("done", "failed"):
            return  # a duplicate delivery of a request that has already ended (re-drives reset it to queued)
        self.requests.mark_running(request_id, receive_count)
        try:
            request = ChatCompletionRequest.model_validate(self.queue.body(request_id))
        except (LookupError, ValueError) as exc:
            why = f"{exc.error_count()} errors" if isinstance(exc, ValidationError) else "it is missing"
            self._end(request_id, [{"error": f"stored body is invalid: {why}"}])
            return
        item_id = request_id
        ctx = RequestContext(tenant=existing.tenant, request_id=request_id)
        try:
            answer = self.gateway.complete(request, ctx)
        except AllModelsFailedError as exc:
            errors = [{"receive": receive_count, **a} for a in exc.attempts]
            if receive_count >= self.max_receive_count:
                logger.error("replay_exhausted", request_id=item_id, receives=receive_count)
                self.requests.mark_failed(item_id, errors, exc.decision)
            else:
                self.requests.mark_queued_again(item_id, errors, exc.decision)
                self._back_off(record, receive_count)
            raise StillFailingError(item_id) from exc
        except RouterError as exc:
            # Refused now (a rule, a budget, a removed model): that is the request's final answer.
            self._end(item_id, [{"status": exc.status, "error": exc.message, "code": exc.code}])
            return
        self.requests.mark_done(item_id, answer.completion.wire(), answer.decision.as_dict())
        self.queue.release(item_id)
        logger.info("replayed", request_id=item_id, model=answer.model.id, receives=receive_count)

    def _end(self, request_id: str, errors: list[dict[str, Any]]) -> None:
        self.requests.mark_failed(request_id, errors, None)
        self.queue.release(request_id)

    def _back_off(self, record: SQSRecord, receive_count: int) -> None:
        seconds = min(MAX_VISIBILITY_SECONDS, int(self.backoff_seconds * 2 ** (receive_count - 1)))
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.queue.queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as exc:  # noqa: BLE001 - the queue's own visibility timeout still applies
            logger.warning("visibility_backoff_failed", error=type(exc).__name__)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The replay function's work (SQS event source with ReportBatchItemFailures)."""
        # Report every failure item by item, even when the whole batch failed: each message keeps its own
        # receive count and back-off instead of the whole batch being retried as one.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            return process_partial_response(  # type: ignore[return-value]
                event=event, record_handler=self.process, processor=processor, context=context
            )
        finally:
            # Outcome records of replayed answers are written before Lambda may freeze the environment.
            if self.gateway.outcomes is not None:
                self.gateway.outcomes.flush()
