"""The Lambda runtime side of the router: a stdlib loop on the Lambda Runtime API that can stream responses.

A handler returns either an API Gateway proxy result (a dict with statusCode, headers, body) or a
`StreamingResponse`, whose body is written chunk by chunk as it is produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# A handler's attribute the loop calls, when present, once each response has been posted (runtime/deferred.py).
AFTER_RESPONSE_HOOK = "after_response"


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
