"""The response cache's cost and benefit through the router's handler: hit latency, and what a miss adds.

`measure()` builds the router through the composition root on tables of its own in moto's server (a child process on a
loopback port, or bench/run.py's), with simulated models at zero latency, and calls `RouterApi.handle` with API
Gateway events as the router function does. Two routes share one
default chain: `plain` does not cache, `cached` does. Blocks of unique requests take turns on both routes (so both
see the same machine noise); every request on `cached` is then a miss, and the difference of the two p50s is what a
miss costs: the look-up before the model call (the write of the new entry is deferred until the response is out, as
the router function defers it, and runs outside the timed call). Hits are one request sent again and again.

Measured twice: with the State table's round trips answered at once once botocore has built and signed them (the
router's own work, as the overhead benchmark measures it: the headline keys), and with every round trip going to
moto's server (`*_loopback_*`: moto's HTTP server costs several milliseconds a call, far more than DynamoDB's
in-region latency, so those numbers bound the cost from above).

Run alone: `python bench/cache_bench.py [--requests N] [--endpoint URL] [--out FILE]`. bench/run.py calls
`run_in_child(stack.endpoint, env=child_environment())` (its own process has imported moto) and merges
`result["keys"]` into docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import workload  # noqa: E402

CHAIN = ["nova-micro", "claude-haiku"]
HIT_QUESTION = "What is the capital of France, and why did it become the capital?"


def bench_config() -> dict[str, Any]:
    """The example catalog with two rule-free routes over the same chain, one of them caching."""
    from llm_router.local.runtime import example_config

    doc = example_config()
    doc["routes"] = [
        {"id": "plain", "default": CHAIN, "baseline": "claude-sonnet"},
        {"id": "cached", "default": CHAIN, "baseline": "claude-sonnet", "cache": {"ttl_seconds": 3600}},
    ]
    doc["rules"] = []
    return doc


def _event(route: str, content: str) -> dict[str, Any]:
    return workload.api_event({"model": route, "messages": [{"role": "user", "content": content}]})


class RouterHandle:
    """`RouterApi.handle` as the router function runs it: the response-cache writes it defers run after each
    response, outside the timed call, as the Lambda runtime loop runs them once it has posted the response."""

    def __init__(self, handle: Callable[[dict[str, Any]], Any], deferred: Any) -> None:
        self.handle = handle
        self.deferred = deferred

    def __call__(self, event: dict[str, Any]) -> Any:
        return self.handle(event)

    def after_response(self) -> int:
        return int(self.deferred.run_pending())


def _timed(handle: RouterHandle, event: dict[str, Any], expect: str | None) -> float:
    started = time.perf_counter()
    response = handle(event)
    elapsed = time.perf_counter() - started
    handle.after_response()
    if response.get("statusCode") != 200:
        raise RuntimeError(f"router answered {response.get('statusCode')}: {response.get('body')}")
    got = (response.get("headers") or {}).get("x-router-cache")
    if got != expect:
        raise RuntimeError(f"expected x-router-cache {expect!r}, got {got!r}")
    return elapsed


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class ZeroLatencyState:
    """Answers the State table's round trips at once, after botocore has built and signed them (as bench/workers.py
    does for the overhead benchmark): writes with `{}`, a cache look-up with the stored hit entry or nothing."""

    def __init__(self, dynamodb: Any, hit_item: dict[str, Any]) -> None:
        self._events = dynamodb.meta.events
        self._hit_pk = hit_item["pk"]["S"]
        self._hit = json.dumps({"Item": hit_item}).encode()

    def __enter__(self) -> ZeroLatencyState:
        self._events.register("before-send.dynamodb.PutItem", self._write)
        self._events.register("before-send.dynamodb.UpdateItem", self._write)
        self._events.register("before-send.dynamodb.GetItem", self._get)
        return self

    def __exit__(self, *_: Any) -> None:
        self._events.unregister("before-send.dynamodb.PutItem", self._write)
        self._events.unregister("before-send.dynamodb.UpdateItem", self._write)
        self._events.unregister("before-send.dynamodb.GetItem", self._get)

    @staticmethod
    def _response(request: Any, body: bytes) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}
        return AWSResponse(request.url, 200, headers, _Body(body))

    def _write(self, request: Any, **_: Any) -> Any:
        return self._response(request, b"{}")

    def _get(self, request: Any, **_: Any) -> Any:
        pk = json.loads(request.body)["Key"]["pk"]["S"]
        if not pk.startswith("cache#"):
            return None  # on to DynamoDB (moto)
        return self._response(request, self._hit if pk == self._hit_pk else b"{}")


def _rounds(handle: RouterHandle, requests: int, block: int, tag: str) -> dict[str, list[float]]:
    """Blocks of unique requests on `plain`, the same on `cached` (all misses), then as many hits, in turns."""
    times: dict[str, list[float]] = {"no_cache": [], "miss": [], "hit": []}
    index = 0
    while len(times["no_cache"]) < requests:
        size = min(block, requests - index)
        for i in range(index, index + size):
            times["no_cache"].append(_timed(handle, _event("plain", f"{tag} question {i}: what is new?"), None))
        for i in range(index, index + size):
            times["miss"].append(_timed(handle, _event("cached", f"{tag} question {i}: what is new?"), "miss"))
        for _ in range(size):
            times["hit"].append(_timed(handle, _event("cached", HIT_QUESTION), "hit"))
        index += size
    return times


def _summary(times: dict[str, list[float]]) -> dict[str, Any]:
    stats: dict[str, Any] = {name: workload.summarize_ms(values) for name, values in times.items()}
    stats["miss_overhead_p50_ms"] = stats["miss"]["p50_ms"] - stats["no_cache"]["p50_ms"]
    return stats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a child process: moto's import (which hooks into botocore) stays out of the measurements."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and moto's module
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _router(endpoint: str, workdir: Path) -> tuple[RouterHandle, Any, str]:
    """The router's API on tables of its own at `endpoint`, built through the composition root as the router
    function builds it (cache writes deferred until after the response); returns its handle, the DynamoDB client
    it uses and its State table."""
    from llm_router.runtime.deferred import Deferred
    from llm_router.settings import Env, RouterSettings
    from llm_router.stores.config_admin import ConfigAdmin, validate_document
    from llm_router.stores.tables import table_definition
    from llm_router.wiring import AwsClients, build_router_api

    suffix = uuid.uuid4().hex[:8]
    config_table, state_table = f"cache-bench-config-{suffix}", f"cache-bench-state-{suffix}"
    clients = AwsClients(
        region="us-east-1",
        endpoint_url=endpoint,
        credentials={"aws_access_key_id": "bench", "aws_secret_access_key": "bench"},
    )
    ddb = clients.get("dynamodb")
    for name in (config_table, state_table):
        ddb.create_table(**table_definition(name))
    config = validate_document(bench_config())
    if not config.ok:
        raise RuntimeError("bench config is invalid: " + "; ".join(config.errors))
    ConfigAdmin(config_table, dynamodb=ddb).apply(config)
    settings = RouterSettings.from_env(
        {
            Env.CONFIG_TABLE_NAME: config_table,
            Env.STATE_TABLE_NAME: state_table,
            Env.SIMULATE: "true",
            Env.RULES_TTL_SECONDS: "3600",
            # Metrics go to a file, as they go to the log stream on Lambda.
            Env.METRICS_SINK: str(workdir / "metrics.jsonl"),
            # As the stack deploys it: counters of tenants without a budget written behind the answers.
            Env.USAGE_FLUSH_SECONDS: str(workload.deployed_context()["usageFlushSeconds"]),
        }
    )
    deferred = Deferred()
    api = build_router_api(settings, clients=clients, defer=deferred.defer)
    return RouterHandle(api.handle, deferred), ddb, state_table


def measure(requests: int = 400, warmup: int = 50, block: int = 20, endpoint: str | None = None) -> dict[str, Any]:
    """Hit latency (p50, p99) and the extra p50 cost of a miss, twice: with the State table's round trips answered
    at once (the router's own work, as the overhead benchmark measures it; the headline keys) and with every round
    trip going to moto's server on loopback (`*_loopback_*`). `keys` holds the numbers for benchmarks.json.

    `endpoint`: a running moto server (bench/run.py's) to create this benchmark's own tables on; without it, one is
    started in a child process. Call this in a process that has not imported moto (see `run_in_child`)."""
    from llm_router.lifecycle import run_hooks

    if "moto" in sys.modules:
        raise RuntimeError("moto is imported in this process: its botocore hooks would be measured; use run_in_child")
    blocked = workload.loopback_only()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = endpoint or stack.enter_context(moto_server())
        handle, ddb, state_table = _router(url, Path(tmp))
        _timed(handle, _event("cached", HIT_QUESTION), "miss")
        [hit_item] = ddb.scan(
            TableName=state_table,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "cache#"}},
        )["Items"]
        for i in range(warmup):
            _timed(handle, _event("plain", f"Warm-up question {i}?"), None)
            _timed(handle, _event("cached", f"Warm-up question {i}?"), "miss")
            _timed(handle, _event("cached", HIT_QUESTION), "hit")
        with ZeroLatencyState(ddb, hit_item):
            zero = _summary(_rounds(handle, requests, block, "zero"))
        loopback = _summary(_rounds(handle, requests, block, "loopback"))
        # The buffered usage counters, written while the table and the metrics file still exist.
        run_hooks()
    if blocked:
        raise RuntimeError(f"the benchmark tried to leave loopback: {blocked}")
    keys = {
        "cache_hit_p50_ms": zero["hit"]["p50_ms"],
        "cache_hit_p99_ms": zero["hit"]["p99_ms"],
        "cache_miss_overhead_p50_ms": zero["miss_overhead_p50_ms"],
        "cache_hit_loopback_p50_ms": loopback["hit"]["p50_ms"],
        "cache_hit_loopback_p99_ms": loopback["hit"]["p99_ms"],
        "cache_miss_overhead_loopback_p50_ms": loopback["miss_overhead_p50_ms"],
    }
    return {
        "requests": requests,
        "warmup": warmup,
        "block": block,
        "keys": keys,
        "zero_latency_dynamodb": zero,
        "loopback_dynamodb": loopback,
    }


def run_in_child(
    endpoint: str | None = None, *, requests: int = 400, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`measure()` in a fresh interpreter (what bench/run.py calls: its own process has imported moto)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cache.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--requests", str(requests), "--out", str(out)]
        if endpoint:
            cmd += ["--endpoint", endpoint]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"cache benchmark failed ({done.returncode}): {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--endpoint", help="a running moto server (default: start one)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = measure(args.requests, args.warmup, endpoint=args.endpoint)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
