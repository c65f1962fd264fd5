"""Work the caller need not wait for, run once its response has gone out.

A response-cache write changes nothing in the answer, yet building and signing its `PutItem` costs as much as the
look-up before the model call. The router function defers it (functions/router/handler.py owns its `Deferred` and
exposes `run_pending` as its handler's `after_response`): the Lambda runtime loop (runtime/loop.py) calls that hook
right after it has posted each response, before it asks for the next invocation, so the environment is never frozen
with work outstanding. Whatever a caller that is not the loop left pending runs before the next request starts, so
nothing waits for ever. The local server and the tests build the gateway without it: there the write happens before
the response, and a repeated request always sees it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Task = Callable[[], object]


class Deferred:
    """Tasks queued by `defer` and run, in order, by `run_pending`; a failing task is logged and the rest still run."""

    def __init__(self) -> None:
        self._tasks: deque[Task] = deque()
        self._lock = threading.Lock()

    def defer(self, task: Task) -> None:
        self._tasks.append(task)

    def run_pending(self) -> int:
        """Run every queued task (those queued meanwhile too); returns how many ran."""
        ran = 0
        with self._lock:
            while self._tasks:
                task = self._tasks.popleft()
                ran += 1
                try:
                    task()
                except Exception:  # noqa: BLE001 - the response is out; a lost deferred write is logged, not raised
                    from llm_router.observability import logger  # the runtime loop imports this module: stay light

                    logger.exception("deferred_task_failed")
        return ran

    def __len__(self) -> int:
        return len(self._tasks)
