"""Turns the workers' results into docs/benchmarks.json (flat keys first) and docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

# (key, label, our key, LiteLLM key, target ratio ours/LiteLLM)
TARGETS = (
    ("overhead_p50", "Overhead p50", "overhead_p50_ms", "litellm_overhead_p50_ms", 1 / 10),
    ("overhead_p99", "Overhead p99", "overhead_p99_ms", "litellm_overhead_p99_ms", 1 / 5),
    (
        "cold_start",
        "Cold start (ours: import + first request; LiteLLM: import alone)",
        "cold_start_ms",
        "litellm_import_ms",
        1 / 8,
    ),
    ("rss", "Peak RSS after 1,000 requests", "rss_mib", "litellm_rss_mib", 1 / 3),
    (
        "stream_ttfb_overhead_p50",
        "Streaming: first-chunk overhead p50",
        "stream_ttfb_overhead_p50_ms",
        "litellm_stream_ttfb_overhead_p50_ms",
        1 / 5,
    ),
    (
        "stream_ttfb_overhead_p99",
        "Streaming: first-chunk overhead p99",
        "stream_ttfb_overhead_p99_ms",
        "litellm_stream_ttfb_overhead_p99_ms",
        1 / 5,
    ),
)


def _round(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def _get(result: dict[str, Any] | None, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def assemble(
    *,
    overhead: dict[str, Any] | None,
    cold: dict[str, Any],
    rss_ours: dict[str, Any] | None,
    rss_theirs: dict[str, Any] | None,
    classifier: dict[str, Any] | None,
    stream: dict[str, Any] | None,
    package: dict[str, Any],
    cache: dict[str, Any] | None = None,
    versions: dict[str, Any],
    machine: dict[str, Any],
    command: str,
    config: dict[str, Any],
    errors: list[str],
    duration_s: float,
) -> dict[str, Any]:
    clf_ok = bool(_get(classifier, "available"))
    flat: dict[str, Any] = {
        "overhead_p50_ms": _get(overhead, "ours", "p50_ms"),
        "overhead_p99_ms": _get(overhead, "ours", "p99_ms"),
        "overhead_max_ms": _get(overhead, "ours", "max_ms"),
        "litellm_overhead_p50_ms": _get(overhead, "litellm", "p50_ms"),
        "litellm_overhead_p99_ms": _get(overhead, "litellm", "p99_ms"),
        "litellm_overhead_max_ms": _get(overhead, "litellm", "max_ms"),
        "cold_start_ms": _get(cold, "ours", "cold_start_ms"),
        "cold_start_import_ms": _get(cold, "ours", "import_ms"),
        "cold_start_first_request_ms": _get(cold, "ours", "first_request_ms"),
        "litellm_import_ms": _get(cold, "litellm", "import_ms"),
        "litellm_import_and_first_request_ms": _get(cold, "litellm", "import_and_first_request_ms"),
        "rss_mib": _get(rss_ours, "peak_rss_mib"),
        "litellm_rss_mib": _get(rss_theirs, "peak_rss_mib"),
        "package_kib": package.get("package_kib"),
        "litellm_installed_kib": package.get("litellm_installed_kib"),
        "litellm_zip_kib": package.get("litellm_zip_kib"),
        "classifier_p50_us": _get(classifier, "per_prompt", "p50_us") if clf_ok else None,
        "classifier_p99_us": _get(classifier, "per_prompt", "p99_us") if clf_ok else None,
        "classifier_load_ms": _get(classifier, "load_ms") if clf_ok else None,
        "stream_ttfb_overhead_p50_ms": _get(stream, "ours", "ttfb_overhead", "p50_ms"),
        "stream_ttfb_overhead_p99_ms": _get(stream, "ours", "ttfb_overhead", "p99_ms"),
        "litellm_stream_ttfb_overhead_p50_ms": _get(stream, "litellm", "ttfb_overhead", "p50_ms"),
        "litellm_stream_ttfb_overhead_p99_ms": _get(stream, "litellm", "ttfb_overhead", "p99_ms"),
        "stream_chunk_overhead_p50_us": _get(stream, "ours", "chunk_overhead_us", "p50_us"),
        "stream_chunk_overhead_p99_us": _get(stream, "ours", "chunk_overhead_us", "p99_us"),
        "litellm_stream_chunk_overhead_p50_us": _get(stream, "litellm", "chunk_overhead_us", "p50_us"),
        "litellm_stream_chunk_overhead_p99_us": _get(stream, "litellm", "chunk_overhead_us", "p99_us"),
        "stream_direct_ttfb_p50_ms": _get(stream, "direct", "ttfb_overhead", "p50_ms"),
        "stream_direct_ttfb_p99_ms": _get(stream, "direct", "ttfb_overhead", "p99_ms"),
        "stream_direct_chunk_p50_us": _get(stream, "direct", "chunk_overhead_us", "p50_us"),
        "stream_direct_chunk_p99_us": _get(stream, "direct", "chunk_overhead_us", "p99_us"),
    }
    flat |= cache_keys(cache)
    ratios = {f"{key}_ratio": _ratio(flat[ours], flat[theirs]) for key, _, ours, theirs, _ in TARGETS}
    ratios["package_ratio_zip"] = _ratio(flat["package_kib"], flat["litellm_zip_kib"])
    ratios["stream_chunk_overhead_p50_ratio"] = _ratio(
        flat["stream_chunk_overhead_p50_us"], flat["litellm_stream_chunk_overhead_p50_us"]
    )
    targets = []
    for key, label, ours, theirs, target in TARGETS:
        ratio = ratios[f"{key}_ratio"]
        targets.append(
            {
                "name": key,
                "label": label,
                "ours": flat[ours],
                "litellm": flat[theirs],
                "ratio": ratio,
                "target_ratio": target,
                "met": None if ratio is None else ratio <= target,
            }
        )
    results = {
        **flat,
        **ratios,
        "targets_met": all(t["met"] for t in targets),
        "overhead_isolated_p50_ms": _get(rss_ours, "overhead", "p50_ms"),
        "overhead_isolated_p99_ms": _get(rss_ours, "overhead", "p99_ms"),
        "litellm_overhead_isolated_p50_ms": _get(rss_theirs, "overhead", "p50_ms"),
        "litellm_overhead_isolated_p99_ms": _get(rss_theirs, "overhead", "p99_ms"),
        "overhead_budget_tenant_p50_ms": _get(overhead, "ours_budget_tenant", "p50_ms"),
        "overhead_budget_tenant_p99_ms": _get(overhead, "ours_budget_tenant", "p99_ms"),
        "dynamodb_writes_per_request": _get(overhead, "dynamodb_writes_per_request"),
        "budget_tenant_dynamodb_calls_per_request": _get(overhead, "budget_tenant_dynamodb_calls_per_request"),
        "cold_start_aws_calls": len(cold.get("ours_first_request_aws_calls") or []) or None,
        "cold_start_aws_wait_ms": cold.get("ours_first_request_aws_ms"),
        "rss_after_import_mib": _get(rss_ours, "rss_after_import_mib"),
        "litellm_rss_after_import_mib": _get(rss_theirs, "rss_after_import_mib"),
        "targets": targets,
        "details": {
            "overhead": overhead,
            "cold_start": cold,
            "rss": {"ours": rss_ours, "litellm": rss_theirs},
            "classifier": classifier,
            "stream": stream,
            "cache": cache,
            "package": package,
            "workload": config,
        },
        "usage_flush_seconds": config.get("usage_flush_seconds"),
        "metrics_sink": "stdout, as on Lambda (one EMF document per request, also its log line), sent to a file",
        "versions": versions,
        "machine": machine,
        "command": command,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": duration_s,
        "errors": errors,
    }
    rounded: dict[str, Any] = _round(results)
    return rounded


# What bench/cache_bench.py measures (its `result["keys"]`): the headline keys with the State table's round trips
# answered once botocore has built and signed them, the `_loopback_` ones with each going to moto's server.
CACHE_KEYS = (
    "cache_hit_p50_ms",
    "cache_hit_p99_ms",
    "cache_miss_overhead_p50_ms",
    "cache_hit_loopback_p50_ms",
    "cache_hit_loopback_p99_ms",
    "cache_miss_overhead_loopback_p50_ms",
)
# The response cache's budget for what a miss adds (the look-up before the model call and the write after it).
CACHE_MISS_OVERHEAD_TARGET_MS = 1.0


def cache_keys(cache: dict[str, Any] | None) -> dict[str, Any]:
    """The cache benchmark's keys for benchmarks.json, and whether a miss stayed within its budget."""
    keys: dict[str, Any] = {key: _get(cache, "keys", key) for key in CACHE_KEYS}
    overhead = keys["cache_miss_overhead_p50_ms"]
    keys["cache_miss_overhead_target_met"] = None if overhead is None else overhead <= CACHE_MISS_OVERHEAD_TARGET_MS
    return keys


def with_cache(results: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    """`results` (a benchmarks.json) with the cache benchmark's keys and details replaced by `cache`'s."""
    merged = {**results, **_round(cache_keys(cache))}
    merged["details"] = {**results.get("details", {}), "cache": _round(cache)}
    return merged


def cache_section(r: dict[str, Any]) -> str:
    """The response cache's rows of benchmarks.md."""
    cache = r.get("details", {}).get("cache") or {}
    if not cache:
        return "## Response cache\n\nNot measured in this run (`bench/run.py --cache-only` measures it alone).\n"
    overhead = r.get("cache_miss_overhead_p50_ms")
    met = "not measured" if overhead is None else ("yes" if overhead <= CACHE_MISS_OVERHEAD_TARGET_MS else "**no**")
    rows = [
        ("Hit, p50 (answered from the cache, no model call)", "cache_hit_p50_ms", "cache_hit_loopback_p50_ms"),
        ("Hit, p99", "cache_hit_p99_ms", "cache_hit_loopback_p99_ms"),
        (
            "What a miss adds, p50 (cached route minus the same route without a cache)",
            "cache_miss_overhead_p50_ms",
            "cache_miss_overhead_loopback_p50_ms",
        ),
    ]
    table = [
        "| | State table answered at once (router's own work) | every round trip to moto's server on loopback |",
        "| --- | ---: | ---: |",
    ]
    for label, zero, loopback in rows:
        table.append(f"| {label} | {_fmt(r.get(zero), 'ms', 3)} | {_fmt(r.get(loopback), 'ms', 3)} |")
    return f"""## Response cache

Through `RouterApi.handle` with API Gateway events, as the router function runs, simulated models at zero latency
(`bench/cache_bench.py`, {_fmt(cache.get("requests"))} requests of each kind after {_fmt(cache.get("warmup"))} warm-up
rounds). Blocks of unique requests take turns on two routes over the same chain, one caching and one not, so a
miss's cost is the difference of their p50s; hits are one request sent again and again. The first column answers
the State table's round trips as soon as botocore has built and signed them (what the overhead benchmark measures
too); the second sends each to moto's HTTP server, whose few milliseconds a call bound DynamoDB's in-region latency
from above. The entry a miss stores is written after the response has gone out (as the Lambda runtime loop runs
it), outside the timed call. Target: a miss adds at most {CACHE_MISS_OVERHEAD_TARGET_MS:g} ms at p50: met: {met}.

{chr(10).join(table)}
"""


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "not measured"
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return f"{text} {unit}".strip()


def _times(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.3f} (1/{1 / ratio:.1f})" if ratio > 0 else "0"


def summary(r: dict[str, Any]) -> str:
    lines = ["", "                                     llm-router     LiteLLM   ratio   target  met"]
    for t in r["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "NO")
        ours = "-" if t["ours"] is None else f"{t['ours']:.2f}"
        theirs = "-" if t["litellm"] is None else f"{t['litellm']:.2f}"
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.3f}"
        lines.append(f"  {t['name']:<32} {ours:>12} {theirs:>11} {ratio:>7} {t['target_ratio']:>8.3f}  {met}")
    package, classifier = _fmt(r["package_kib"], "KiB", 1), _fmt(r["classifier_p99_us"], "us")
    lines.append(f"  package: {package} zipped; classifier p99: {classifier}")
    lines.append("  written: docs/benchmarks.json, docs/benchmarks.md")
    return "\n".join(lines)


def markdown(r: dict[str, Any]) -> str:
    d = r["details"]
    v = r["versions"]
    m = r["machine"]
    ov = d["overhead"] or {}
    cold = d["cold_start"]
    pkg = d["package"]
    clf = d["classifier"] or {}
    work = d["workload"]
    rss_ours = d["rss"]["ours"] or {}
    rule_hits = ", ".join(f"`{k}` {n:,}" for k, n in sorted((ov.get("rules") or {}).items()))
    rows = [
        ("Overhead per request, p50 (warm, one process)", "overhead_p50_ms", "litellm_overhead_p50_ms", "ms", 3),
        ("Overhead per request, p99", "overhead_p99_ms", "litellm_overhead_p99_ms", "ms", 3),
        ("Overhead per request, max", "overhead_max_ms", "litellm_overhead_max_ms", "ms", 2),
        (
            "Overhead p50, each alone in a process",
            "overhead_isolated_p50_ms",
            "litellm_overhead_isolated_p50_ms",
            "ms",
            3,
        ),
        (
            "Overhead p99, each alone in a process",
            "overhead_isolated_p99_ms",
            "litellm_overhead_isolated_p99_ms",
            "ms",
            3,
        ),
        (
            "Overhead p50, a tenant with a budget (spend read and usage written per request)",
            "overhead_budget_tenant_p50_ms",
            "litellm_overhead_p50_ms",
            "ms",
            3,
        ),
        ("Overhead p99, a tenant with a budget", "overhead_budget_tenant_p99_ms", "litellm_overhead_p99_ms", "ms", 3),
        (
            "Cold start: import + first request (median)",
            "cold_start_ms",
            "litellm_import_and_first_request_ms",
            "ms",
            1,
        ),
        ("Cold start: import only (median)", "cold_start_import_ms", "litellm_import_ms", "ms", 1),
        ("Peak RSS after 1,000 requests", "rss_mib", "litellm_rss_mib", "MiB", 1),
        ("RSS after import", "rss_after_import_mib", "litellm_rss_after_import_mib", "MiB", 1),
        ("Package, zipped", "package_kib", "litellm_zip_kib", "KiB", 1),
    ]
    table = ["| | llm-router | LiteLLM | ratio |", "| --- | ---: | ---: | ---: |"]
    for label, ours, theirs, unit, digits in rows:
        table.append(
            f"| {label} | {_fmt(r.get(ours), unit, digits)} | {_fmt(r.get(theirs), unit, digits)} "
            f"| {_times(_ratio(r.get(ours), r.get(theirs)))} |"
        )
    table.append(
        f"| Package, installed | {_fmt(pkg.get('package_unzipped_kib'), 'KiB', 1)} (+ "
        f"{_fmt(pkg.get('managed_dependencies_installed_kib'), 'KiB', 0)} of Powertools and pydantic in the "
        f"AWS-managed layer) | {_fmt(pkg.get('litellm_installed_kib'), 'KiB', 0)} "
        f"({_fmt(pkg.get('litellm_with_dependencies_installed_kib'), 'KiB', 0)} with its "
        f"{pkg.get('litellm_dependencies')} dependencies) | |"
    )
    if clf.get("available"):
        table.append(
            f"| Classifier per prompt (domain scores + difficulty), p50 / p99 | {_fmt(r['classifier_p50_us'], 'µs', 0)}"
            f" / {_fmt(r['classifier_p99_us'], 'µs', 0)} | no counterpart | |"
        )
        table.append(
            f"| Classifier weights loaded (once per process, at the first score) | "
            f"{_fmt(r['classifier_load_ms'], 'ms', 1)} | | |"
        )
    else:
        table.append(f"| Classifier per prompt, p50 / p99 | not measured: {clf.get('reason', 'not run')} | | |")

    targets = ["| target | llm-router / LiteLLM | needed | met |", "| --- | ---: | ---: | :---: |"]
    for t in r["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        targets.append(f"| {t['label']} | {_times(t['ratio'])} | ≤ 1/{round(1 / t['target_ratio'])} | {met} |")

    st = d.get("stream") or {}
    stream_rows = [
        ("First chunk: out of the gateway minus sent by the upstream, p50", "stream_ttfb_overhead_p50_ms",
         "litellm_stream_ttfb_overhead_p50_ms", "stream_direct_ttfb_p50_ms", "ms", 3),
        ("First chunk, p99", "stream_ttfb_overhead_p99_ms", "litellm_stream_ttfb_overhead_p99_ms",
         "stream_direct_ttfb_p99_ms", "ms", 3),
        ("Each later chunk: out minus sent, p50", "stream_chunk_overhead_p50_us",
         "litellm_stream_chunk_overhead_p50_us", "stream_direct_chunk_p50_us", "µs", 0),
        ("Each later chunk, p99", "stream_chunk_overhead_p99_us", "litellm_stream_chunk_overhead_p99_us",
         "stream_direct_chunk_p99_us", "µs", 0),
    ]  # fmt: skip
    stream_table = [
        "| | llm-router | LiteLLM | ratio | the upstream read directly (no gateway) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, ours, theirs, floor, unit, digits in stream_rows:
        stream_table.append(
            f"| {label} | {_fmt(r.get(ours), unit, digits)} | {_fmt(r.get(theirs), unit, digits)} "
            f"| {_times(_ratio(r.get(ours), r.get(theirs)))} | {_fmt(r.get(floor), unit, digits)} |"
        )
    objects = st.get("litellm_objects") or {}
    above = []
    for label, ours, theirs, floor, unit, digits in stream_rows[::2]:
        if None not in (r.get(ours), r.get(theirs), r.get(floor)):
            mine, their = r[ours] - r[floor], r[theirs] - r[floor]
            name = label.split(":")[0].lower()
            above.append(f"{name}, {_fmt(mine, unit, digits)} against {_fmt(their, unit, digits)}")
    above_text = "; ".join(above) or "not measured"

    ours_cold, their_cold = cold.get("ours", {}), cold.get("litellm", {})
    wait = r.get("cold_start_aws_wait_ms")
    calls = cold.get("ours_first_request_aws_calls") or []
    call_list = ", ".join(f"{calls.count(c)} {c}" for c in dict.fromkeys(calls))
    msgs = ", ".join(f"{k} ({n:,} chars)" for k, n in work["messages"].items())
    dirty = " (and files not yet committed under `layers/` or `functions/`)" if v["llm_router_tree_dirty"] else ""
    dyn = cold.get("dynamodb") or {}
    flush = r.get("usage_flush_seconds")
    return f"""# Benchmarks: llm-router against LiteLLM

Measured side by side on one machine in one run of `{r["command"]}` ({r["generated_at"]}, {r["duration_s"]:.0f} s).
A ratio is llm-router's number divided by LiteLLM's: below 1, llm-router is faster or smaller. Everything below is
the output of that run (also in [`benchmarks.json`](benchmarks.json)); `{r["command"]}` measures again and rewrites
both files.

## Results

{chr(10).join(table)}

## Targets

{chr(10).join(targets)}

## Streaming

{_fmt(st.get("streams"))} streams per side, taking turns in one process, from one upstream on loopback that sends
{_fmt(st.get("chunks"))} content chunks {_fmt(st.get("interval_ms"), "ms", 0)} apart (the first one interval after
the request arrives, like a first token) and stamps each with the moment it sent it. A chunk's overhead is the moment
a gateway hands it out minus that stamp; the direct column reads the same stream with no gateway at all (`http.client`,
one line at a time), the floor that loopback and waking a reader cost everyone.

What each gateway does on the way: llm-router serves the benchmark's own config (the 200 rules above, with its 4 models
made OpenAI-compatible models at the upstream, nothing simulated). Its first rule sends requests with personal data to
the EU model, so every request's upstream strings are scanned for PII before it is routed; the route keeps no response
cache and the tenant has no budget, as above. LiteLLM's Router has the same 4 models as deployments of one model group,
and no rules. `.venv-bench/bin/python bench/streaming.py --runs 5` repeats this measurement alone and prints the medians
of the runs; `--variant pii-policy` makes the PII rule a policy (`enforce: always`), `--variant plain` drops it.

{chr(10).join(stream_table)}

Above the direct read's floor (the gateways' own share, p50 minus p50): {above_text}.

{cache_section(r)}
## Where llm-router's time goes

- **Usage counters.** Every answer adds its tokens and cost to the tenant's counters in DynamoDB. For a tenant
  without a budget, as here, nothing reads them before its next request, so the router sums them in memory and
  writes one `UpdateItem` per tenant and day every {_fmt(flush, "s", 0)} (`usageFlushSeconds` in `cdk.json`, which
  this run used; on SIGTERM too, see `stores/usage_buffer.py`): {_fmt(r.get("dynamodb_writes_per_request"), "", 4)}
  DynamoDB writes per request in this run. A tenant with a budget has its spend read before and its usage written
  after every request ({_fmt(r.get("budget_tenant_dynamodb_calls_per_request"), "", 1)} DynamoDB calls per request,
  answered at once here: botocore still builds, signs and parses them): that costs
  {_fmt(r.get("overhead_budget_tenant_p50_ms"), "ms", 3)} at p50 and
  {_fmt(r.get("overhead_budget_tenant_p99_ms"), "ms", 3)} at p99 (rows above), and on AWS two DynamoDB round trips
  more, which no number here includes.
- **Rules.** 200 rules are not evaluated one by one: each rule's condition gives a *guard*, facts of which a request
  must show one to have any chance of matching it (a word of each keyword, the tenant, a metadata value, tools or
  images, a string every regex match contains), and serving evaluates only the rules whose guard a request meets,
  in priority order (`routing/index.py`; `/v1/route` still evaluates and traces every rule). A test on generated
  rules and prompts checks that this decides exactly as evaluating every rule does.
- **Cold start.** The first request makes {len(calls)} AWS calls ({call_list}): the config (three partitions of the
  Config table, {work["rules"]} rules) and the tenant settings. They are answered by moto through a loopback proxy
  that replays moto's recorded answer to a repeated read ({_fmt(dyn.get("measured_runs_hits"))} reads answered so,
  {_fmt(dyn.get("measured_runs_passed_to_moto"))} calls passed on to moto: the writes of the usage each process holds
  when it exits, after its measurement; `bench/read_cache.py`): moto takes hundreds of
  milliseconds to build its answer to the {work["rules"]}-item query in Python, far longer than DynamoDB, and that
  would have been counted as ours. Waiting for those calls took {_fmt(wait, "ms", 1)} of the
  {_fmt(r.get("cold_start_ms"), "ms", 0)}; on AWS, add DynamoDB's round trips (a few milliseconds each, after a TLS
  handshake). The functions import botocore, not boto3 (boto3 and s3transfer were a fifth of the import). The
  router function builds its API when it is imported (`RouterSettings.from_env()`, then `wiring.build_router_api`),
  DynamoDB client and fallback queue's SQS client included, so the import row holds work a first request used to
  do.
- **Fixed with this benchmark**: the rule index above; PII detectors skipped when a text has too few digits for
  what they look for; the text's words split with `str.translate`; usage counters written behind the answers for
  tenants without a budget; EMF documents written directly (the shape Powertools writes) and carrying the request's
  log fields, instead of a second, Powertools-formatted log line per request (that line alone cost about 0.1 ms);
  earlier (commit 731e8c9): keyword and regex pre-filters, per-rule check lists, no client-side parameter
  validation. On this machine a warm request went from 1.39 ms (p50) to the figure above.
- **Streaming: the first chunk.** What a streamed request does before the upstream's first byte (parsing, the PII
  scan, routing, sending the request) is not in the first-chunk overhead; what is, is the way from that byte to the
  first chunk out. That way is now short:
  - Work that does not depend on the first byte is done while the model works on its first token. Once the
    request is out, the provider calls `while_waiting()`. The gateway then builds the stream's start, its
    bookkeeping and its events, and the API builds the whole response: headers, chunk head, SSE body. When the
    first delta arrives, only the attempt count (and the simulated flag) are added. A model that fails after its
    200 but before its first token leaves its preparation unused, and the next one is prepared in its turn.
  - A chunked, uncompressed event stream is read straight from the connection's buffered socket file
    (`providers/http.py` `ChunkedBody`): three C calls a read instead of a dozen frames of urllib3 and http.client.
    In the same process, taking turns, that alone moved the first read 19 µs earlier at the median.
  - Other frames came off that way: events become tuples made in C, whole-character reads are decoded without the
    incremental decoder, JSON goes through the decoder's scanner, text chunks are written without the JSON encoder,
    and the SSE writer reads the gateway's generator directly.
  - The youngest generation is collected while waiting, so that no collection falls on that way. Every tenth one
    would also collect the next generation, which took 0.9 to 1.7 ms at the median in a profiling process holding
    the router and moto on this machine.
  - What is left is mostly this machine's wake-up. After a 5 ms sleep, the first operation of a process here takes
    about 30 µs (0.5 µs warm), and the code after it runs about 1.5 times slower for a while. It hits every side
    alike, and it is why the direct reader's own first chunk takes 0.12 to 0.23 ms, depending on the machine's
    state. The router's figure is that floor plus 0.08 to 0.14 ms of its own. LiteLLM's is that floor plus about 1.5
    ms. The ratio therefore moves with the machine's state. Across runs on the final code it was 0.155 to 0.20 at
    the median and 0.167 to 0.22 at p99 (this run, and `bench/streaming.py` runs while the machine was slower).
    A p99 of 100 streams is their second-largest value.
- `make bench-profile` prints the call tree of warm requests (pyinstrument; `BENCH_ARGS=--cprofile` for cProfile's
  top functions, `--budget-tenant` for a tenant with a budget, `--stream` for streamed requests), and
  `.venv-bench/bin/python -X importtime -c "import sys; sys.path.insert(0, 'functions/router'); import handler"`
  what each import of a cold start costs.

## How it was measured

- **Overhead.** {_fmt(ov.get("requests"))} warm requests per gateway after {_fmt(ov.get("warmup"))} unmeasured ones,
  all in one process, in blocks of {_fmt(ov.get("block"))} taking turns so that both see the same machine noise.
  llm-router: an API Gateway proxy event (the authorizer has run, as API Gateway passes it) into
  `functions/router/handler.py`'s `lambda_handler`, the proxy response out: the body parsed and validated (pydantic),
  the {work["rules"]}-rule config from the in-memory cache (`RULES_TTL_SECONDS=3600`, so no reload mid-run), features
  (PII scan included), rule evaluation, the simulated model (zero latency), cost, the usage counters, one EMF
  document on stdout that is both the request's metrics and its log line (as on Lambda; the benchmark sends stdout
  to a file), and the response serialised to JSON. Rules that decided: {rule_hits}; `default` means none of the
  {work["rules"]} matched. LiteLLM: `Router` with {work["litellm_deployments"]} deployments behind one model name,
  each with `mock_response`, called with `router.completion(model=..., messages=...)`; Python objects in and out, no
  JSON. The same four message sets take turns on both sides: {msgs}.
- **Cold start.** A fresh interpreter per run, {cold.get("runs")} runs per side taking turns (medians), after one
  discarded run each so that both read compiled bytecode. llm-router: from just before `import handler` (the router
  function's module, its folder first on `sys.path`, as the Lambda runtime does) until the first response is back,
  including the botocore client and the config read from DynamoDB (moto's server in the parent process, behind the
  read-replaying proxy described above; moto's own import is not counted). LiteLLM: `import litellm` alone, with
  `LITELLM_LOCAL_MODEL_COST_MAP=True`; its `Router` set-up and first `completion` add
  {_fmt(their_cold.get("first_request_ms"), "ms", 1)}. Modules loaded: {_fmt(cold.get("ours_modules"))} against
  {_fmt(cold.get("litellm_modules"))}; X-Ray SDK imported by the router: {cold.get("ours_xray_sdk_imported")}. Whole
  processes, interpreter start-up included: {_fmt(ours_cold.get("process_wall_ms"), "ms", 0)} against
  {_fmt(their_cold.get("process_wall_ms"), "ms", 0)}.
- **Memory.** Peak resident set size (`VmHWM`) of a process that imported its gateway and answered
  {_fmt(rss_ours.get("requests"))} requests, one process per gateway. The same processes give the "alone in its own
  process" overhead rows (first {_fmt(ov.get("warmup"))} requests left out).
- **Package.** Our code as CDK uploads it: `functions/router/` and `layers/common/` zipped, with the stack's
  exclusions (no `cli/`, `local/`, `ml/`, `__pycache__`). Powertools and pydantic come from the AWS-managed
  Powertools layer and boto3 from the Lambda runtime, so they are not part of our upload. LiteLLM: the files of its
  installed distribution, zipped the same way; and with every dependency it requires (extras left out).
- **Classifier.** `default_classifier()` from `llm_router.routing.classifier`, warm: `domain_scores(text)` then
  `difficulty(text)` for one prompt, p50/p99 over {_fmt(clf.get("prompts"))} prompts.
- **Streaming.** The upstream (`bench/streaming.py`) is an OpenAI-compatible `POST /v1/chat/completions` in the
  benchmark's parent process, so it shares no interpreter lock with the gateways; its stamps are `time.monotonic_ns`,
  one clock for every process on Linux. llm-router: a streamed request's API Gateway event into `lambda_handler`
  (the same 200 rules, every model an OpenAI-compatible model at the upstream, nothing simulated), and the returned
  `StreamingResponse`'s body iterated in the same process, as the runtime loop iterates it on Lambda to write each
  piece to the Runtime API at once; a chunk is out when its `data:` event, serialised, is handed out. This is the
  real path minus the Runtime API's socket, not the local server's chunked HTTP. LiteLLM: `Router` with
  {work["litellm_deployments"]} deployments, each an `openai/` model at the same upstream, `completion(stream=True)`
  iterated; a chunk is out when serialised as LiteLLM's proxy puts it on the wire
  (`model_dump_json(exclude_none=True, exclude_unset=True)` after `data: `). The Python object alone, before that:
  first chunk {_fmt(_get(objects, "ttfb_overhead", "p50_ms"), "ms", 3)} at p50, later chunks
  {_fmt(_get(objects, "chunk_overhead_us", "p50_us"), "µs", 0)}. {_fmt(st.get("warmup"))} unmeasured streams per side
  first, and a {_fmt(st.get("settle_ms"), "ms", 0)} pause after every stream of every side: LiteLLM's logging threads
  work for a millisecond or two after each of its streams, which would otherwise land in the next side's stream.
- **Network.** Nothing beyond loopback: every worker refuses other addresses and reports what it refused
  ({", ".join(cold.get("refused") or []) or "nothing"}).

## What is and is not comparable

- LiteLLM's call is its in-process Python API; ours starts from the Lambda event and ends with the HTTP response
  body, so ours also parses and serialises JSON, writes its metrics and log document, and updates usage counters.
  Neither includes API Gateway, the Lambda service's own invoke overhead, or a real model.
- Streaming: both gateways receive the upstream's chunks over a loopback socket and hand out bytes ready for the
  wire; neither number includes the hop to the caller (the Runtime API and API Gateway for us, an HTTP response for
  LiteLLM's proxy). Ours asks the upstream for usage in its last chunk (`stream_options.include_usage`) to account
  the stream; LiteLLM's router, as called here, does not.
- LiteLLM's router here has no rules: it spreads calls over its 4 deployments with its default strategy. Ours
  evaluates up to {work["rules"]} rules per request. Comparable jobs, not the same job.
- The cold-start target sets our import *and* first request (DynamoDB's answers replayed, its latency left out)
  against LiteLLM's import alone. On Lambda our code is not precompiled (the package has no `__pycache__` and the
  file system is read-only), which adds compile time to a real cold start that this run, with warm bytecode caches
  on both sides, does not show.
- This machine is {m["arch"]} with Python {v["python"]}; the stack deploys on arm64 with a newer Python. Other
  processes may share its {m["cores"]} cores, and a process that loses its core for a scheduler time slice shows it as
  a 5-7 ms request: such pauses dominate both sides' p99 and max. The ratios, measured side by side, carry over
  better than absolute numbers.
- In the shared process, each gateway's garbage collections also walk the other's objects (LiteLLM's import leaves
  far more of them); the "alone in a process" rows avoid that, but are measured one after the other, not side by
  side.
- Metrics were on: {r["metrics_sink"]}.

## Versions and machine

- Command: `{r["command"]}` (creates `.venv-bench` with uv; LiteLLM is installed only there, never in `.venv` or the
  layer)
- llm-router commit `{v["llm_router_commit"]}`{dirty}
- Python {v["python"]}, LiteLLM {v["litellm"]}, aws-lambda-powertools {v["aws_lambda_powertools"]}, pydantic
  {v["pydantic"]} (core {v["pydantic_core"]}), boto3 {v["boto3"]}, moto {v["moto"]}
- Machine: {m["cores"]} cores ({m["cpu"]}), {m["memory_gib"]} GiB memory, {m["os"]}
"""
