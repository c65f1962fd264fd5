"""One measurement per process, started by bench/run.py: `python bench/workers.py KIND --out result.json`.

Standard output stands in for a Lambda function's log stream: the router's EMF metrics and log lines go there, and
run.py sends it to a file. Results go to `--out` as JSON.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before anything else is imported: the cold-start clock of a fresh interpreter

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import streaming  # noqa: E402
import workload  # noqa: E402

ROUTER_DIR = workload.ROOT / "functions" / "router"
LITELLM_DEPLOYMENTS = 4
STREAM_SETTLE_SECONDS = 0.025


# -- our side --------------------------------------------------------------------------------------------------------
def import_router_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The router function's module, imported as the Lambda runtime does (its folder first on sys.path)."""
    sys.path.insert(0, str(ROUTER_DIR))
    import handler  # type: ignore[import-not-found]

    return handler.lambda_handler  # type: ignore[no-any-return]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class ZeroLatencyWrites:
    """Answers the router's DynamoDB writes (usage counters) at once, after botocore has built and signed them.

    The simulated model answers in zero time; this does the same for the State table's round trips, so that
    what is measured is the router's own work. The writes are counted and reported per request. With
    `reads` on, queries (a budget tenant's spend) are answered at once too, with no items: nothing spent yet.

    Installed on the process's botocore session before the handler is imported: each client copies the session's
    event hooks when it is created, and the handler creates its clients at import.
    """

    OPERATIONS = ("UpdateItem", "PutItem")

    def __init__(self) -> None:
        self.calls = 0
        self.reads = False
        self.read_calls = 0

    def install(self) -> ZeroLatencyWrites:
        from llm_router.stores.aws import session

        botocore_session = session()
        for operation in self.OPERATIONS:
            botocore_session.register(f"before-send.dynamodb.{operation}", self._answer)
        botocore_session.register("before-send.dynamodb.Query", self._answer_query)
        return self

    @staticmethod
    def _response(request: Any, body: bytes) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}
        return AWSResponse(request.url, 200, headers, _Body(body))

    def _answer(self, request: Any, **_: Any) -> Any:
        self.calls += 1
        return self._response(request, b"{}")

    def _answer_query(self, request: Any, **_: Any) -> Any:
        if not self.reads:
            return None  # on to DynamoDB (moto)
        self.read_calls += 1
        return self._response(request, b'{"Items":[],"Count":0,"ScannedCount":0}')


def router_call(
    lambda_handler: Callable[..., dict[str, Any]], index: int, tenant: str = workload.TENANT
) -> Callable[[], dict[str, Any]]:
    """A zero-argument call of the handler with request `index` (the event is built outside the timed call)."""
    event = workload.api_event(workload.chat_body(index), tenant)
    context = workload.LambdaContext()
    return lambda: lambda_handler(event, context)


def check_router_response(response: dict[str, Any], rules: dict[str, int]) -> None:
    if response.get("statusCode") != 200:
        raise RuntimeError(f"router answered {response.get('statusCode')}: {response.get('body')}")
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v[0] for k, v in (response.get("multiValueHeaders") or {}).items() if v}
    rule = headers.get("x-router-rule") or multi.get("x-router-rule", "?")
    rules[rule] = rules.get(rule, 0) + 1


# -- LiteLLM's side --------------------------------------------------------------------------------------------------
def litellm_router() -> Any:
    """LiteLLM's Router with 4 deployments behind one name, each answering with `mock_response` (no network)."""
    from litellm import Router

    model_list = [
        {
            "model_name": workload.ROUTE,
            "litellm_params": {
                "model": f"openai/model-{i}",
                "api_key": "sk-bench",
                "mock_response": workload.MOCK_ANSWER,
            },
        }
        for i in range(LITELLM_DEPLOYMENTS)
    ]
    return Router(model_list=model_list)


def litellm_call(router: Any, index: int) -> Callable[[], Any]:
    body = workload.chat_body(index)
    return lambda: router.completion(model=body["model"], messages=body["messages"])


def check_litellm_response(response: Any) -> None:
    if not response.choices or response.choices[0].message.content != workload.MOCK_ANSWER:
        raise RuntimeError(f"LiteLLM answered unexpectedly: {response!r}")


# -- measurements ----------------------------------------------------------------------------------------------------
def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


class AwsCallClock:
    """Counts the AWS API calls a process makes and the wall time spent in them (wraps botocore once loaded)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.seconds = 0.0

    def install(self) -> AwsCallClock:
        from botocore.client import BaseClient

        real = BaseClient._make_api_call
        clock = self

        def timed_call(client: Any, operation: str, params: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return real(client, operation, params)
            finally:
                clock.seconds += time.perf_counter() - t0
                clock.calls.append(operation)

        BaseClient._make_api_call = timed_call  # type: ignore[method-assign]
        return clock


def ours_cold(_: argparse.Namespace) -> dict[str, Any]:
    """Import the router handler module and serve the first request (config read from DynamoDB included)."""
    t0 = time.perf_counter()
    lambda_handler = import_router_handler()
    t1 = time.perf_counter()
    # The handler's import has loaded botocore already (checked below): installing the wrapper imports nothing.
    botocore_loaded = "botocore.client" in sys.modules
    clock = AwsCallClock().install()
    t1b = time.perf_counter()
    response = lambda_handler(workload.api_event(workload.chat_body(0)), workload.LambdaContext())
    t2 = time.perf_counter()
    check_router_response(response, {})
    return {
        "import_ms": (t1 - t0) * 1000,
        "first_request_ms": (t2 - t1b) * 1000,
        "cold_start_ms": (t1 - t0 + t2 - t1b) * 1000,
        "botocore_loaded_by_import": botocore_loaded,
        "aws_calls": clock.calls,
        "aws_calls_ms": clock.seconds * 1000,
        "since_interpreter_ms": (t2 - _T_START) * 1000,
        "modules": len(sys.modules),
        "xray_sdk_imported": "aws_xray_sdk" in sys.modules,
        "litellm_imported": "litellm" in sys.modules,
    }


def litellm_cold(_: argparse.Namespace) -> dict[str, Any]:
    """`import litellm` alone (what the target compares with), then Router set-up and a first call for context."""
    t0 = time.perf_counter()
    import litellm  # noqa: F401

    t1 = time.perf_counter()
    router = litellm_router()
    elapsed, response = timed(litellm_call(router, 0))
    t2 = time.perf_counter()
    check_litellm_response(response)
    return {
        "import_ms": (t1 - t0) * 1000,
        "first_request_ms": elapsed * 1000,
        "import_and_first_request_ms": (t2 - t0) * 1000,
        "since_interpreter_ms": (t1 - _T_START) * 1000,
        "modules": len(sys.modules),
    }


def ours_rss(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of a process that imported the router and served `--requests` requests."""
    writes = ZeroLatencyWrites().install()
    lambda_handler = import_router_handler()
    rss_import = workload.peak_rss_mib()
    rules: dict[str, int] = {}
    times = []
    for i in range(args.requests):
        elapsed, response = timed(router_call(lambda_handler, i))
        check_router_response(response, rules)
        times.append(elapsed)
    return {
        "requests": args.requests,
        "rss_after_import_mib": rss_import,
        "peak_rss_mib": workload.peak_rss_mib(),
        "overhead": workload.summarize_ms(times[args.warmup :]),
        "rules": rules,
        "dynamodb_writes_per_request": writes.calls / args.requests,
    }


def litellm_rss(args: argparse.Namespace) -> dict[str, Any]:
    import litellm  # noqa: F401

    rss_import = workload.peak_rss_mib()
    router = litellm_router()
    times = []
    for i in range(args.requests):
        elapsed, response = timed(litellm_call(router, i))
        check_litellm_response(response)
        times.append(elapsed)
    return {
        "requests": args.requests,
        "rss_after_import_mib": rss_import,
        "peak_rss_mib": workload.peak_rss_mib(),
        "overhead": workload.summarize_ms(times[args.warmup :]),
    }


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    """Both gateways warm in one process; blocks of requests take turns so both see the same machine noise.

    A third variant sends the same requests for a tenant with a daily budget: its spend is read before and its
    usage written after every request (one Query and one UpdateItem, answered at once), where the benchmark's
    tenant, without a budget, has its usage written behind the answers (USAGE_FLUSH_SECONDS, as deployed).
    """
    writes = ZeroLatencyWrites().install()
    lambda_handler = import_router_handler()
    router = litellm_router()
    rules: dict[str, int] = {}
    for i in range(args.warmup):
        check_router_response(router_call(lambda_handler, i)(), rules)
        check_litellm_response(litellm_call(router, i)())
        check_router_response(router_call(lambda_handler, i, workload.BUDGET_TENANT)(), {})
    rules.clear()
    writes.calls = 0
    ours: list[float] = []
    ours_budget: list[float] = []
    theirs: list[float] = []
    budget_writes = 0
    index = 0
    while len(ours) < args.requests:
        block = min(args.block, args.requests - len(ours))
        for i in range(index, index + block):
            elapsed, response = timed(router_call(lambda_handler, i))
            check_router_response(response, rules)
            ours.append(elapsed)
        for i in range(index, index + block):
            elapsed, response = timed(litellm_call(router, i))
            check_litellm_response(response)
            theirs.append(elapsed)
        before, writes.reads = writes.calls, True
        try:
            for i in range(index, index + block):
                elapsed, response = timed(router_call(lambda_handler, i, workload.BUDGET_TENANT))
                check_router_response(response, {})
                ours_budget.append(elapsed)
        finally:
            writes.reads = False
            budget_writes += writes.calls - before
        index += block
    return {
        "requests": args.requests,
        "warmup": args.warmup,
        "block": args.block,
        "ours": workload.summarize_ms(ours),
        "litellm": workload.summarize_ms(theirs),
        "ours_budget_tenant": workload.summarize_ms(ours_budget),
        "rules": rules,
        "dynamodb_writes_per_request": (writes.calls - budget_writes) / args.requests,
        "budget_tenant_dynamodb_calls_per_request": (budget_writes + writes.read_calls) / args.requests,
    }


def classifier(args: argparse.Namespace) -> dict[str, Any]:
    """Per-prompt inference time of the learned classifier (domain scores and difficulty), when it is installed."""
    try:
        from llm_router.routing.classifier import default_classifier
    except ImportError as exc:
        return {"available": False, "reason": f"llm_router.routing.classifier: {exc}"}
    t0 = time.perf_counter()
    clf = default_classifier()
    load_ms = (time.perf_counter() - t0) * 1000
    if clf is None:
        return {"available": False, "reason": "default_classifier() returned None (no model shipped)"}
    prompts = [messages[-1]["content"] for _, messages in workload.MESSAGES]
    for text in prompts * 5:
        clf.domain_scores(text)
        clf.difficulty(text)
    both, domain, difficulty = [], [], []
    for i in range(args.requests):
        text = prompts[i % len(prompts)]
        t0 = time.perf_counter()
        clf.domain_scores(text)
        t1 = time.perf_counter()
        clf.difficulty(text)
        t2 = time.perf_counter()
        domain.append(t1 - t0)
        difficulty.append(t2 - t1)
        both.append(t2 - t0)

    def us(values: list[float]) -> dict[str, float]:
        stats = workload.summarize_ms(values)
        return {"p50_us": stats["p50_ms"] * 1000, "p99_us": stats["p99_ms"] * 1000, "max_us": stats["max_ms"] * 1000}

    return {
        "available": True,
        "load_ms": load_ms,
        "prompts": args.requests,
        "per_prompt": us(both),
        "domain_scores": us(domain),
        "difficulty": us(difficulty),
    }


# -- streaming ---------------------------------------------------------------------------------------------------
class StreamTimes:
    """When each upstream chunk came out of one gateway: first-chunk overheads (ns) and later chunks' delays (ns)."""

    def __init__(self) -> None:
        self.first: list[int] = []
        self.later: list[int] = []

    def add(self, outputs: list[tuple[int, str]], chunks: int) -> None:
        """`outputs`: (time the gateway handed the piece out, its text); every stamp in a piece counts at that time."""
        seen: dict[int, int] = {}
        for out_ns, text in outputs:
            for index, sent_ns in streaming.stamps(text):
                seen.setdefault(index, out_ns - sent_ns)
        if sorted(seen) != list(range(chunks)):
            raise RuntimeError(f"expected each of the upstream's {chunks} chunks once, got {len(seen)}")
        self.first.append(seen[0])
        self.later.extend(seen[i] for i in range(1, chunks))

    def summary(self) -> dict[str, Any]:
        first = workload.summarize_ms([ns / 1e9 for ns in self.first])
        later = workload.summarize_ms([ns / 1e9 for ns in self.later])
        return {
            "streams": len(self.first),
            "ttfb_overhead": first,
            "chunk_overhead_us": {"n": later["n"]}
            | {key.replace("_ms", "_us"): value * 1000 for key, value in later.items() if key != "n"},
        }


def stream_body(index: int) -> dict[str, Any]:
    return {**workload.chat_body(index), "stream": True}


def ours_stream(lambda_handler: Callable[..., Any], index: int, times: StreamTimes | None, chunks: int) -> None:
    """One streamed request through the handler; its StreamingResponse's body is iterated as the runtime loop
    does on Lambda (each piece is what would be written to the Runtime API at once)."""
    from llm_router.runtime import StreamingResponse

    event = workload.api_event(stream_body(index))
    response = lambda_handler(event, workload.LambdaContext())
    if not isinstance(response, StreamingResponse):
        raise RuntimeError(f"router answered {response.get('statusCode')}: {response.get('body')}")
    outputs: list[tuple[int, bytes]] = []
    body = iter(response.body)
    try:
        for piece in body:
            outputs.append((time.monotonic_ns(), piece))
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if times is not None:
        times.add([(t, _sse_content(piece)) for t, piece in outputs], chunks)


def _sse_content(piece: bytes) -> str:
    text = []
    for line in piece.decode().split("\n"):
        if line.startswith("data: {"):
            event = json.loads(line.removeprefix("data: "))
            if "error" in event:
                raise RuntimeError(f"the stream ended in an error: {event['error']}")
            text += [c["delta"].get("content") or "" for c in event.get("choices") or []]
    return "".join(text)


def litellm_stream_router(base_url: str) -> Any:
    """LiteLLM's Router with the same 4 deployments, each an OpenAI-compatible model at the upstream."""
    from litellm import Router

    model_list = [
        {
            "model_name": workload.ROUTE,
            "litellm_params": {
                "model": f"openai/{streaming.MODEL_PREFIX}{i}",
                "api_base": base_url,
                "api_key": "sk-bench",
            },
        }
        for i in range(LITELLM_DEPLOYMENTS)
    ]
    return Router(model_list=model_list)


def litellm_stream(
    router: Any, index: int, times: StreamTimes | None, objects: StreamTimes | None, chunks: int
) -> None:
    """One streamed `completion` through LiteLLM's Router. A chunk is out once serialised as LiteLLM's proxy puts
    it on the wire (`data: ` + `model_dump_json(exclude_none=True, exclude_unset=True)`); `objects` gets the
    moment the Python object came out of the iterator, before that."""
    body = stream_body(index)
    response = router.completion(model=body["model"], messages=body["messages"], stream=True)
    outputs: list[tuple[int, bytes]] = []
    as_objects: list[tuple[int, str]] = []
    for chunk in response:
        got = time.monotonic_ns()
        piece = b"data: " + chunk.model_dump_json(exclude_none=True, exclude_unset=True).encode() + b"\n\n"
        outputs.append((time.monotonic_ns(), piece))
        as_objects.append((got, "".join(c.delta.content or "" for c in chunk.choices)))
    if times is not None and objects is not None:
        times.add([(t, _sse_content(piece)) for t, piece in outputs], chunks)
        objects.add(as_objects, chunks)


def direct_stream(url: str, index: int, times: StreamTimes | None, chunks: int) -> None:
    """The floor: the upstream's stream read directly (http.client, one line at a time), no gateway."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        payload = json.dumps({**stream_body(index), "model": "direct"})
        connection.request("POST", parts.path + "/chat/completions", payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        outputs: list[tuple[int, str]] = []
        for line in response:
            if line.startswith(b"data: {"):
                outputs.append((time.monotonic_ns(), line.decode()))
    finally:
        connection.close()
    if times is not None:
        times.add([(t, _sse_content(line.encode())) for t, line in outputs], chunks)


def stream(args: argparse.Namespace) -> dict[str, Any]:
    """Streams through both gateways from the same upstream, taking turns, with a direct reader as the floor.

    The router: `functions/router/handler.py` with the upstream's models in its config, its StreamingResponse
    iterated in this process. LiteLLM: `Router.completion(stream=True)` iterated, each chunk serialised as its
    proxy does. The first chunk's overhead is the moment a gateway hands it out minus the moment the upstream
    sent it; each later chunk's, the same for that chunk.
    """
    writes = ZeroLatencyWrites().install()
    lambda_handler = import_router_handler()
    router = litellm_stream_router(args.upstream)

    def settle() -> None:
        # LiteLLM's logging threads work for a millisecond or two after each of its streams; that must not land in
        # the next side's stream. Every stream of every side is followed by the same pause.
        time.sleep(STREAM_SETTLE_SECONDS)

    for i in range(args.warmup):
        ours_stream(lambda_handler, i, None, args.chunks)
        settle()
        litellm_stream(router, i, None, None, args.chunks)
        settle()
        direct_stream(args.upstream, i, None, args.chunks)
        settle()
    writes.calls = 0
    ours, theirs, theirs_objects, direct = StreamTimes(), StreamTimes(), StreamTimes(), StreamTimes()
    for i in range(args.requests):
        ours_stream(lambda_handler, i, ours, args.chunks)
        settle()
        litellm_stream(router, i, theirs, theirs_objects, args.chunks)
        settle()
        direct_stream(args.upstream, i, direct, args.chunks)
        settle()
    return {
        "streams": args.requests,
        "warmup": args.warmup,
        "chunks": args.chunks,
        "settle_ms": STREAM_SETTLE_SECONDS * 1000,
        "ours": ours.summary(),
        "litellm": theirs.summary(),
        "litellm_objects": theirs_objects.summary(),
        "direct": direct.summary(),
        "dynamodb_writes_per_request": writes.calls / args.requests,
    }


KINDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "ours-cold": ours_cold,
    "litellm-cold": litellm_cold,
    "ours-rss": ours_rss,
    "litellm-rss": litellm_rss,
    "overhead": overhead,
    "classifier": classifier,
    "stream": stream,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--upstream", help="the streaming upstream's API root (stream)")
    parser.add_argument("--chunks", type=int, default=streaming.CHUNKS, help="content chunks per stream (stream)")
    args = parser.parse_args()
    blocked = workload.loopback_only()
    result = KINDS[args.kind](args)
    result["non_loopback_connections_refused"] = sorted(set(blocked))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
