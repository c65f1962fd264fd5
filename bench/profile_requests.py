"""`make bench-profile`: where a warm request's time goes, with the benchmark's 200-rule config.

Serves `--requests` warm requests through the router handler under pyinstrument (or cProfile with `--cprofile`)
and prints the call tree (or the top functions). DynamoDB is moto's server on a loopback port, as in run.py.
With `--stream`, streamed requests from the streaming benchmark's upstream (bench/streaming.py, here in a thread of
this process, its chunks sent back to back so that waiting does not fill the profile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

import run
import streaming
import workers
import workload

WARMUP = 200


def stream_call(handler: Any, index: int) -> Any:
    return lambda: workers.ours_stream(handler, index, None, streaming.CHUNKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--cprofile", action="store_true", help="cProfile's top functions instead of pyinstrument")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--budget-tenant", action="store_true", help="requests of a tenant with a budget (spend read, usage written)"
    )
    parser.add_argument("--stream", action="store_true", help="streamed requests (default --requests 50)")
    args = parser.parse_args()
    if args.stream and args.requests == parser.get_default("requests"):
        args.requests = 50

    from llm_router.local.runtime import LocalStack
    from llm_router.stores import aws

    workdir = Path(tempfile.mkdtemp(prefix="llm-router-profile-"))
    stack = LocalStack(config_path=workload.CONFIG_PATH, simulate=True, project_dir=workdir, write_endpoint_file=False)
    stack.start()
    run.seed_budget_tenant(stack)
    upstream = streaming.StreamingUpstream(interval_ms=0).start() if args.stream else None
    # This process plays the router function: it gets the workers' environment (pointing at the emulation), and
    # its botocore session is made again so that nothing read before the change is kept.
    os.environ.update(run.child_environment(stack))
    if upstream is not None:
        os.environ.update(run.seed_stream_config(stack, upstream.base_url))
    aws.reset()
    # The EMF documents and log lines go to /dev/null (at the descriptor: Powertools' logger holds sys.stdout).
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    profiler: Any = None
    try:
        writes = workers.ZeroLatencyWrites().install()
        handler = workers.import_router_handler()
        tenant = workload.TENANT
        if args.budget_tenant:
            tenant = workload.BUDGET_TENANT
            workers.router_call(handler, 0, tenant)()  # tenant settings cached before the queries are answered
        writes.reads = args.budget_tenant
        calls = [workers.router_call(handler, i, tenant) for i in range(args.requests + WARMUP)]
        warmup = WARMUP
        if args.stream:
            warmup = 5
            calls = [stream_call(handler, i) for i in range(args.requests + warmup)]
        for call in calls[:warmup]:
            call()
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
        else:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
        for call in calls[warmup:]:
            call()
        if args.cprofile:
            profiler.disable()
        else:
            profiler.stop()
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(devnull)
        if upstream is not None:
            upstream.stop()
        stack.stop()
    if args.cprofile:
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())
    else:
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
