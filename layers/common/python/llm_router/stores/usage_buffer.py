"""Usage counters written behind the answers: one `UpdateItem` per tenant and day every few seconds.

Writing the counters with every answer costs each request a DynamoDB round trip (and the CPU to build, sign and
parse it), although nobody reads them for seconds: reports and `llm-router usage`. So, for tenants without an
enforced budget, the gateway adds each answer's amounts to this buffer, and the buffer writes the sums once they
are `flush_seconds` old: one write per tenant and day, whatever the number of answers in between. Tenants with a
budget are written with each answer (see `accounting.py`), because their next request's budget check must see it.

The flush runs on the request that finds the buffer due (after its answer is built), on a timer when traffic stops
(a daemon thread, started with the first answer held, wakes when the oldest sum is due), when the process is told to
stop (`lifecycle.on_shutdown`: SIGTERM on Lambda, where the layer's extension makes the runtime receive one; exit
elsewhere), and on demand. Locally and on any long-running host the timer writes every sum within `flush_seconds`
of its first answer, traffic or not. On Lambda the environment is frozen between invocations, timer included: a sum
that falls due while frozen is written as soon as the environment runs again (the next invocation: the timer wakes,
and that request's answer finds the buffer due) or when Lambda shuts the environment down (SIGTERM) - so after
traffic stops, a dashboard over the counters can lag until that environment is reused or retired (minutes, at most
a few hours). It is lost only if the process dies without SIGTERM (a crash or a timeout of the function), and the
request metrics in CloudWatch (`CostUSD`, `InputTokens`, ...) still count those answers. A failed write keeps its
sums for the next flush and is counted.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime

from llm_router.schemas.tenants import UsageAmounts
from llm_router.stores.usage_store import DayUsage, UsageStore


class UsageBuffer:
    """Sums answers per (tenant, UTC day) in memory and writes them with `UsageStore.add_day`."""

    def __init__(
        self,
        store: UsageStore,
        flush_seconds: float,
        *,
        on_error: Callable[[str, Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._on_error = on_error
        self._clock = clock
        # Answers are summed when written, not when added: adding stays a list append on the request path.
        self._pending: dict[tuple[str, date], list[DayUsage]] = {}
        self._oldest: float | None = None  # when the oldest pending answer was added
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._timer_wanted = timer
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()

    def close(self) -> None:
        """Stop the timer (what is held stays held: flush first if it should be written)."""
        self._stop.set()

    def seconds_until_due(self) -> float | None:
        """How long until the oldest sum held is `flush_seconds` old (0 when due), or None when nothing is held."""
        with self._lock:
            if self._oldest is None:
                return None
            return max(0.0, self._oldest + self.flush_seconds - self._clock())

    def _start_timer(self) -> None:
        with self._lock:
            if self._timer is not None or not self._timer_wanted:
                return
            # The thread holds the buffer weakly: a buffer nobody uses any more is collected and its timer ends.
            self._timer = threading.Thread(
                target=_flush_when_due, args=(weakref.ref(self), self._stop), name="usage-flush", daemon=True
            )
        self._timer.start()

    def add(self, tenant: str, *, model: str, route: str, amounts: UsageAmounts, when: datetime) -> None:
        """Hold one answer's amounts; writes everything held when the oldest of it is `flush_seconds` old."""
        age = self._hold((tenant, when.astimezone(UTC).date()), DayUsage.of(model, route, amounts))
        if age >= self.flush_seconds:
            self.flush()
        elif self._timer is None:
            self._start_timer()

    @property
    def pending(self) -> int:
        """How many (tenant, day) sums are waiting to be written."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every sum held; returns how many writes succeeded. A failed write is kept for the next flush."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing them
        try:
            with self._lock:
                batch, self._pending, self._oldest = self._pending, {}, None
            written = 0
            for (tenant, day), answers in batch.items():
                usage = DayUsage()
                for answer in answers:
                    usage.merge(answer)
                try:
                    self.store.add_day(tenant, day, usage)
                    written += 1
                except Exception as exc:  # noqa: BLE001 - keep the sums; the next flush tries again
                    self._hold((tenant, day), usage)
                    if self._on_error is not None:
                        self._on_error(tenant, exc)
            return written
        finally:
            self._flushing.release()

    def _hold(self, key: tuple[str, date], usage: DayUsage) -> float:
        """Add `usage` to what is held for `key`; returns the age in seconds of the oldest amounts held."""
        now = self._clock()
        with self._lock:
            self._pending.setdefault(key, []).append(usage)
            if self._oldest is None:
                self._oldest = now
            return now - self._oldest


def _flush_when_due(ref: weakref.ReferenceType[UsageBuffer], stop: threading.Event) -> None:
    """The timer: sleep until the oldest sum is due (or `flush_seconds` when nothing is held), then write."""
    while True:
        buffer = ref()
        if buffer is None:
            return
        due = buffer.seconds_until_due()
        wait = buffer.flush_seconds if due is None else due
        del buffer  # not kept alive while waiting
        if stop.wait(max(wait, 0.01)):
            return
        buffer = ref()
        if buffer is None:
            return
        due = buffer.seconds_until_due()
        if due is not None and due <= 0:
            buffer.flush()
        del buffer
