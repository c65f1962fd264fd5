"""The Lambda runtime side of the router: a stdlib loop on the Lambda Runtime API that can stream responses.

A handler returns either an API Gateway proxy result (a dict with statusCode, headers, body) or a
`StreamingResponse`, whose body is written chunk by chunk as it is produced.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class StreamingResponse:
    """An HTTP response whose body is produced while it is sent (server-sent events).

    Iterating `body` may raise: before the first chunk, that is an ordinary invocation error; after it, the
    runtime ends the response with the error in the stream's trailers. `close()` is called on `body` (when it has
    one) once the response ends, however it ends, so a generator's `finally` runs.
    """

    status_code: int
    headers: dict[str, str]
    body: Iterable[bytes]
    multi_value_headers: dict[str, list[str]] = field(default_factory=dict)


_after_response: list[Callable[[], object]] = []
_hooks_lock = threading.Lock()


def after_response(hook: Callable[[], object]) -> None:
    """Run `hook` after every response has been sent and before the next invocation is asked for: work behind
    the answer (outcome records) finishes there instead of in an environment Lambda has frozen."""
    with _hooks_lock:
        if hook not in _after_response:
            _after_response.append(hook)


def run_after_response() -> None:
    """Run the hooks (the runtime loop calls this); a failing hook does not stop the others or the loop."""
    with _hooks_lock:
        hooks = list(_after_response)
    for hook in hooks:
        # The response is out; a hook's own metrics and logs tell what failed.
        with contextlib.suppress(Exception):
            hook()
