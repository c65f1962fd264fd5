"""`make bench`: llm-router against LiteLLM on this machine, in one run; writes docs/benchmarks.{json,md}.

A benchmark, not a test: it fails only when a measurement could not be taken, never because of a number.
DynamoDB is moto's server, started here in the parent process on a loopback port; every measured child process
reaches it through AWS_ENDPOINT_URL, so moto's own import never counts towards the router's cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cache_bench
import report
import sizes
import streaming
import workload
from read_cache import ReadCache

WORKERS = workload.BENCH_DIR / "workers.py"
COMMAND = "make bench"


def child_environment(stack: Any) -> dict[str, str]:
    """What a deployed router function would see (the stack's variables for the router: table names, queue URL),
    pointed at the emulation (`stack.environ` and `stack.endpoint`), plus LiteLLM's offline switch (each side
    ignores the other's)."""
    from llm_router.cli.common import local_environment

    env = {**stack.environ, **local_environment(stack.endpoint, stack.region)}
    for name in ("AWS_PROFILE", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "POWERTOOLS_TRACE_ENABLED"):
        env.pop(name, None)
    env.update(
        {
            "LLM_ROUTER_SIMULATE": "true",
            # Metrics stay on and go to stdout as EMF, as on Lambda; the parent sends stdout to a file.
            "LLM_ROUTER_METRICS_SINK": "stdout",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_SERVICE_NAME": "llm-router",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Long enough that the cache never expires mid-run: the overhead test measures warm requests.
            "RULES_TTL_SECONDS": "3600",
            # As the stack deploys it (cdk.json): counters of tenants without a budget written behind the answers.
            "USAGE_FLUSH_SECONDS": str(workload.deployed_context()["usageFlushSeconds"]),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def seed_budget_tenant(stack: Any) -> None:
    """The budget tenant's settings in the Config table, written before any worker starts."""
    from llm_router.schemas.tenants import TenantSpec
    from llm_router.stores.tenant_store import TenantStore

    spec = TenantSpec.model_validate({"id": workload.BUDGET_TENANT, "daily_budget_usd": 1_000_000})
    TenantStore(stack.settings.config_table_name, dynamodb=stack.clients.get("dynamodb")).put(spec)


class Runner:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.errors: list[str] = []
        self._count = 0

    def run(
        self, kind: str, *extra: str, timeout: float = 900, env: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """Run one worker process (in `env`, default the runner's); returns its result, or None (and records why)
        when it failed."""
        self._count += 1
        stem = self.workdir / f"{self._count:02d}-{kind}"
        out = stem.with_suffix(".json")
        log = stem.with_suffix(".stdout")
        err = stem.with_suffix(".stderr")
        cmd = [sys.executable, str(WORKERS), kind, "--out", str(out), *extra]
        t0 = time.perf_counter()
        with log.open("wb") as stdout, err.open("wb") as stderr:
            try:
                returncode = subprocess.run(  # noqa: S603 - our own interpreter and script
                    cmd,
                    stdout=stdout,
                    stderr=stderr,
                    env=env or self.env,
                    cwd=workload.ROOT,
                    timeout=timeout,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                returncode = None
        wall_ms = (time.perf_counter() - t0) * 1000
        if returncode != 0 or not out.exists():
            status = "timed out" if returncode is None else f"exit {returncode}"
            tail = err.read_text(errors="replace").strip().splitlines()[-5:]
            self.errors.append(f"{kind}: {status}: {' | '.join(tail)}")
            print(f"  {kind}: FAILED ({status}); see {err}", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        result["process_wall_ms"] = wall_ms
        result["stdout_lines"] = sum(1 for _ in log.open("rb"))
        result["emf_documents"] = sum(1 for line in log.open("rb") if b'"_aws"' in line)
        return result


def cold_starts(runner: Runner, runs: int, moto_endpoint: str) -> dict[str, Any]:
    """Fresh interpreters, taking turns; one discarded run each first, so both read compiled bytecode.

    DynamoDB is reached through `read_cache.ReadCache`: the discarded run's reads go to moto, the measured runs'
    are answered with moto's recorded bytes (see read_cache.py for why).
    """
    cache = ReadCache(moto_endpoint).start()
    saved_env = runner.env
    runner.env = {**saved_env, "AWS_ENDPOINT_URL": cache.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": cache.endpoint}
    try:
        runner.run("ours-cold")
        runner.run("litellm-cold")
        filled = cache.misses
        ours, theirs = [], []
        for i in range(runs):
            print(f"  cold start {i + 1}/{runs}", flush=True)
            for kind, into in (("ours-cold", ours), ("litellm-cold", theirs)):
                result = runner.run(kind)
                if result is not None:
                    into.append(result)
    finally:
        runner.env = saved_env
        cache.stop()

    def median(results: list[dict[str, Any]], key: str) -> float | None:
        return statistics.median(r[key] for r in results) if results else None

    return {
        "runs": runs,
        "ours": {
            key: median(ours, key)
            for key in ("cold_start_ms", "import_ms", "first_request_ms", "since_interpreter_ms", "process_wall_ms")
        },
        "ours_runs_ms": [round(r["cold_start_ms"], 1) for r in ours],
        "ours_first_request_aws_calls": ours[0]["aws_calls"] if ours else None,
        "ours_first_request_aws_ms": median(ours, "aws_calls_ms"),
        "dynamodb": {
            "answered_by": "moto, through a loopback proxy that replays its recorded answers to repeated reads",
            "reads_recorded_in_discarded_run": filled,
            "measured_runs_hits": cache.hits,
            "measured_runs_passed_to_moto": cache.misses - filled,
        },
        "ours_modules": ours[0]["modules"] if ours else None,
        "ours_xray_sdk_imported": any(r["xray_sdk_imported"] for r in ours),
        "litellm": {
            key: median(theirs, key)
            for key in ("import_ms", "first_request_ms", "import_and_first_request_ms", "process_wall_ms")
        },
        "litellm_runs_ms": [round(r["import_ms"], 1) for r in theirs],
        "litellm_modules": theirs[0]["modules"] if theirs else None,
        "refused": sorted({h for r in ours + theirs for h in r["non_loopback_connections_refused"]}),
    }


STREAM_CONFIG_TABLE = "llm-router-bench-stream"


def seed_stream_config(stack: Any, base_url: str) -> dict[str, str]:
    """A Config table of its own with the streaming config; returns what points the router's environment at it."""
    from llm_router.stores.config_admin import ConfigAdmin, validate_document
    from llm_router.stores.tables import table_definition

    config = validate_document(streaming.stream_config(workload.rules_config(), base_url))
    if not config.ok:
        raise SystemExit("streaming config is invalid: " + "; ".join(config.errors))
    ddb = stack.clients.get("dynamodb")
    ddb.create_table(**table_definition(STREAM_CONFIG_TABLE))
    ConfigAdmin(STREAM_CONFIG_TABLE, dynamodb=ddb).apply(config)
    return {"CONFIG_TABLE_NAME": STREAM_CONFIG_TABLE, "LLM_ROUTER_SIMULATE": "false"}


def streams(runner: Runner, stack: Any, count: int, interval_ms: float) -> dict[str, Any] | None:
    """Both gateways streaming from one upstream (bench/streaming.py, in this process) in one worker.

    The router reads its own config table there, the benchmark's 200 rules with every model an OpenAI-compatible
    model at the upstream, and nothing is simulated.
    """
    upstream = streaming.StreamingUpstream(interval_ms=interval_ms).start()
    try:
        env = {**runner.env, **seed_stream_config(stack, upstream.base_url)}
        result = runner.run(
            "stream", "--requests", str(count), "--warmup", "5", "--upstream", upstream.base_url, env=env
        )
    finally:
        upstream.stop()
    if result is not None:
        result["interval_ms"] = interval_ms
        result["upstream_streams"] = upstream.streams
        result["upstream_usage_requested"] = upstream.usage_requested
    return result


def response_cache(stack: Any, requests: int, errors: list[str] | None = None) -> dict[str, Any] | None:
    """The cache benchmark on tables of its own in this run's moto server, in a child process (this one has imported
    moto, whose botocore hooks would be measured). A failure is reported like the workers' (`errors`), or raised."""
    print(f"response cache: {requests} hits, misses and uncached requests", flush=True)
    try:
        return cache_bench.run_in_child(stack.endpoint, requests=requests, env=child_environment(stack))
    except RuntimeError as exc:
        if errors is None:
            raise
        errors.append(f"cache: {exc}")
        return None


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        mem_gib = round(int(meminfo.read_text().split()[1]) / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "arch": platform.machine(),
    }


def versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    def git(*args: str) -> str:
        out = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607 - git from PATH
            cwd=workload.ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()

    return {
        "python": platform.python_version(),
        "llm_router_commit": git("rev-parse", "--short=12", "HEAD") or None,
        "llm_router_tree_dirty": bool(git("status", "--porcelain", "layers", "functions")),
        "litellm": v("litellm"),
        "aws_lambda_powertools": v("aws-lambda-powertools"),
        "pydantic": v("pydantic"),
        "pydantic_core": v("pydantic-core"),
        "boto3": v("boto3"),
        "moto": v("moto"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="warm requests per gateway (>= 2000)")
    parser.add_argument("--cold-runs", type=int, default=9, help="fresh interpreters per side (>= 7)")
    parser.add_argument("--rss-requests", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100, help="streams per gateway")
    parser.add_argument("--stream-interval-ms", type=float, default=streaming.INTERVAL_MS)
    parser.add_argument("--cache-requests", type=int, default=400, help="requests per kind in the cache benchmark")
    parser.add_argument(
        "--cache-only",
        action="store_true",
        help="only the cache benchmark; its keys are merged into the existing benchmarks.json",
    )
    parser.add_argument("--out-dir", type=Path, default=workload.ROOT / "docs")
    parser.add_argument("--keep", action="store_true", help="keep the workers' logs and results")
    parser.add_argument("--render", action="store_true", help="only rewrite benchmarks.md from benchmarks.json")
    args = parser.parse_args()
    if args.render:
        results = json.loads((args.out_dir / "benchmarks.json").read_text())
        (args.out_dir / "benchmarks.md").write_text(report.markdown(results))
        return

    import yaml

    from llm_router.local.runtime import LocalStack
    from llm_router.stores.config_admin import validate_document

    if yaml.safe_load(workload.CONFIG_PATH.read_text()) != workload.rules_config():
        raise SystemExit(f"{workload.CONFIG_PATH} is stale: regenerate it with `python bench/workload.py`")
    config = validate_document(workload.rules_config())
    if not config.ok:
        raise SystemExit("bench config is invalid: " + "; ".join(config.errors))

    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="llm-router-bench-"))
    stack = LocalStack(config_path=workload.CONFIG_PATH, simulate=True, project_dir=workdir, write_endpoint_file=False)
    stack.start()
    if args.cache_only:
        try:
            cache = response_cache(stack, args.cache_requests)
        finally:
            stack.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        assert cache is not None  # without `errors`, a failure raises
        results = report.with_cache(json.loads((args.out_dir / "benchmarks.json").read_text()), cache)
        (args.out_dir / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out_dir / "benchmarks.md").write_text(report.markdown(results))
        print(json.dumps(cache["keys"], indent=2))
        return
    try:
        seed_budget_tenant(stack)
        runner = Runner(workdir, child_environment(stack))
        print(f"DynamoDB (moto) on {stack.endpoint}; workers' output in {workdir}", flush=True)
        print(f"overhead: {args.requests} warm requests each, same process", flush=True)
        overhead = runner.run("overhead", "--requests", str(args.requests))
        print("cold start", flush=True)
        cold = cold_starts(runner, args.cold_runs, stack.endpoint)
        print(f"memory: {args.rss_requests} requests, one process each", flush=True)
        rss_ours = runner.run("ours-rss", "--requests", str(args.rss_requests))
        rss_theirs = runner.run("litellm-rss", "--requests", str(args.rss_requests))
        print("classifier", flush=True)
        clf = runner.run("classifier")
        print(f"streaming: {args.streams} streams each, {streaming.CHUNKS} chunks {args.stream_interval_ms:g} ms apart")
        stream = streams(runner, stack, args.streams, args.stream_interval_ms)
        cache = response_cache(stack, args.cache_requests, runner.errors)
    finally:
        stack.stop()
    print("package size", flush=True)
    package = sizes.measure()

    results = report.assemble(
        overhead=overhead,
        cold=cold,
        rss_ours=rss_ours,
        rss_theirs=rss_theirs,
        classifier=clf,
        stream=stream,
        cache=cache,
        package=package,
        versions=versions(),
        machine=machine(),
        command=COMMAND,
        config={
            "rules": len(config.entries["rule"]),
            "models": len(config.entries["model"]),
            "messages": workload.message_chars(),
            "litellm_deployments": 4,
            "usage_flush_seconds": workload.deployed_context()["usageFlushSeconds"],
        },
        errors=runner.errors,
        duration_s=time.time() - started,
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "benchmarks.md").write_text(report.markdown(results))
    print(report.summary(results))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if runner.errors:
        raise SystemExit("some measurements failed:\n  " + "\n  ".join(runner.errors))


if __name__ == "__main__":
    main()
