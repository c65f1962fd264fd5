"""The held-out benchmark behind docs/routing-quality.md: converts the test halves, runs `eval` on each, and writes
the summary (JSON) and the quality curves (PNG).

    python -m llm_router.ml.report --data-dir ../shared/data/routing --docs docs
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_router.ml.convert import PRICE_SOURCES, PRICES, Source, convert, write_jsonl
from llm_router.ml.datasets import ROUTELLM_STRONG, ROUTELLM_WEAK, dcrouter_prices
from llm_router.ml.evaluate import Report, evaluate, plot, read_records
from llm_router.routing.classifier import DEFAULT_WEIGHTS, load_classifier

DCROUTER_WEAK = "mistral-7b-instruct-v0.3"
DCROUTER_STRONG = "llama-3.1-nemotron-51b-instruct"

# (title, source, folder under the data dir, weak, strong)
BENCHMARKS: tuple[tuple[str, Source, str, str, str], ...] = (
    ("MMLU (RouteLLM, held-out half)", "routellm-mmlu", "routellm", ROUTELLM_WEAK, ROUTELLM_STRONG),
    ("GSM8K (RouteLLM, held-out half)", "routellm-gsm8k", "routellm", ROUTELLM_WEAK, ROUTELLM_STRONG),
    ("dcrouter test file", "dcrouter", "dcrouter", DCROUTER_WEAK, DCROUTER_STRONG),
)


def _details(report: Report) -> dict[str, Any]:
    return {
        **report.summary(),
        "weak": report.weak,
        "strong": report.strong,
        "weak_quality": round(report.weak_quality, 4),
        "strong_quality": round(report.strong_quality, 4),
        "weak_cost_usd": report.weak_cost,
        "strong_cost_usd": report.strong_cost,
        "curve": [
            {"strong_share": round(p.strong_share, 4), "quality": round(p.quality, 4), "cost_usd": p.cost}
            for p in report.router
        ],
    }


def latency(weights: Path, prompts: Sequence[str]) -> dict[str, Any]:
    """Load time and per-prompt time of domain scores plus difficulty (a fresh prompt each time), in this process."""
    started = time.perf_counter()
    clf = load_classifier(weights)
    load_ms = (time.perf_counter() - started) * 1000
    times = []
    for prompt in prompts:
        started = time.perf_counter()
        clf.domain_scores(prompt)
        clf.difficulty(prompt)
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return {
        "prompts": len(times),
        "load_ms": round(load_ms, 1),
        "p50_us": round(times[len(times) // 2], 1),
        "p99_us": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
        "max_us": round(times[-1], 1),
        "weights_bytes": weights.stat().st_size,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def run(data_dir: Path, docs: Path, weights: Path = DEFAULT_WEIGHTS) -> dict[str, Any]:
    clf = load_classifier(weights)
    reports: dict[str, Report] = {}
    prompts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for title, source, folder, weak, strong in BENCHMARKS:
            path = Path(tmp) / f"{source}-test.jsonl"
            write_jsonl(convert(source, data_dir / folder, "test"), path)
            records = read_records(path)
            prompts.extend(r.prompt for r in records)
            reports[title] = evaluate(records, weak, strong, clf.difficulty)
    dc_prices = dcrouter_prices(data_dir / "dcrouter")
    result = {
        "command": f"python -m llm_router.ml.report --data-dir {data_dir} --docs {docs}",
        "weights": weights.name,
        "split": "RouteLLM: prompts whose sha256 is even (contaminated prompts dropped); dcrouter: its test file",
        "prices_usd_per_mtok": {
            **{m: {"input": p[0], "output": p[1], "source": PRICE_SOURCES[m]} for m, p in PRICES.items()},
            **{
                m: {"input": dc_prices[m][0], "output": dc_prices[m][1], "source": "dcrouter default_llm.json"}
                for m in (DCROUTER_WEAK, DCROUTER_STRONG)
                if m in dc_prices
            },
        },
        "benchmarks": {title: _details(rep) for title, rep in reports.items()},
        "latency": latency(weights, prompts),
        "weights_metadata": clf.metadata,
    }
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "routing-quality.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot({t: r for t, r in reports.items() if t.startswith(("MMLU", "GSM8K"))}, docs / "routing-quality.png")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/routing"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    result = run(args.data_dir, args.docs, args.weights)
    for title, summary in result["benchmarks"].items():
        print(title, json.dumps({k: summary[k] for k in ("apgr", "cpt50", "cpt80", "aiq", "savings_at_95", "n")}))
    print("latency", json.dumps(result["latency"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
