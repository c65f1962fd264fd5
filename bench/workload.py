"""What both gateways are fed: the same messages, the 200-rule config, API Gateway events, statistics.

Imports only the standard library, so a cold-start child can load it before the clock starts without paying for
either gateway.
"""

from __future__ import annotations

import json
import math
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CONFIG_PATH = BENCH_DIR / "rules-200.yaml"
TENANT = "bench"
BUDGET_TENANT = "bench-budget"  # the same requests from a tenant with a daily budget
ROUTE = "auto"
RULE_COUNT = 200

_CODE = """Why does this raise a KeyError? I thought setdefault handled missing keys.

```python
def tally(words):
    counts = {}
    for word in words:
        counts[word] += 1
    return counts
```

Traceback (most recent call last):
  File "tally.py", line 7, in <module>
    print(tally(["a", "b", "a"]))
  File "tally.py", line 4, in tally
    counts[word] += 1
KeyError: 'a'
"""

_SYSTEM = (
    "You are a concise assistant for a travel company. Answer in at most three sentences, in a friendly tone, "
    "and never invent prices, schedules or availability: when you do not know, say so and point to the booking "
    "page. Prefer metric units and 24-hour times. If the customer writes in another language, answer in it."
)

_LONG = " ".join(
    [
        "Summarise the following meeting notes in five bullet points for people who missed it.",
        "The team reviewed the quarterly roadmap and agreed to move the search rewrite to the next quarter,",
        "because the indexing pipeline still drops documents under load and the fix needs a schema change.",
        "Support asked for a status page that shows partial outages per region; design will draft one.",
        "The mobile release slipped by a week after the accessibility audit found contrast problems",
        "in the onboarding screens; the fixes are small but need another round of testing on older phones.",
    ]
    * 6
)

# (name, messages): short chat, a system prompt with a question, a code question, a long document.
MESSAGES: tuple[tuple[str, list[dict[str, str]]], ...] = (
    ("short", [{"role": "user", "content": "Hi! Can you suggest a name for a friendly office plant?"}]),
    (
        "system+question",
        [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": "Can I bring a folding bike on the overnight train to Vienna?"},
        ],
    ),
    ("code", [{"role": "user", "content": _CODE}]),
    ("long", [{"role": "user", "content": _LONG}]),
)

# Roughly what the simulated model answers (12-36 words), so both gateways build responses of similar size.
MOCK_ANSWER = (
    "Routing keeps answers fast and affordable while the strong model handles the hard questions, "
    "and every request is answered by the model that fits it best."
)


def deployed_context() -> dict[str, Any]:
    """The stack's settings as `cdk deploy` reads them (cdk.json's context)."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def message_chars() -> dict[str, int]:
    return {name: sum(len(m["content"]) for m in msgs) for name, msgs in MESSAGES}


def chat_body(index: int) -> dict[str, Any]:
    """The OpenAI request body number `index` (the message sets take turns)."""
    _, messages = MESSAGES[index % len(MESSAGES)]
    return {"model": ROUTE, "messages": messages}


def api_event(body: dict[str, Any], tenant: str = TENANT) -> dict[str, Any]:
    """An API Gateway REST proxy event as it reaches the router after the authorizer has run."""
    text = json.dumps(body)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    return {
        "resource": "/v1/{proxy+}",
        "path": "/v1/chat/completions",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "chat/completions"},
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "bench",
            "httpMethod": "POST",
            "path": "/v1/chat/completions",
            "resourcePath": "/v1/{proxy+}",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"principalId": tenant, "tenant": tenant},
        },
        "body": text,
        "isBase64Encoded": False,
    }


class LambdaContext:
    """The attributes Powertools' logger reads from the Lambda context."""

    function_name = "llm-router-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:llm-router-bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


# -- the 200-rule config -----------------------------------------------------------------------------------------
_TOPICS = [
    "kubernetes helm chart",
    "invoice refund chargeback",
    "mortgage escrow amortization",
    "oncology chemotherapy dosage",
    "tax deduction depreciation",
    "contract indemnity clause",
    "photosynthesis chlorophyll",
    "quantum entanglement qubit",
    "bitcoin wallet seed phrase",
    "warehouse forklift pallet",
    "vaccine booster antibody",
    "earthquake seismograph richter",
    "sonnet iambic pentameter",
    "chess opening gambit",
    "espresso crema tamping",
    "marathon tempo intervals",
    "lease tenancy deposit",
    "payroll overtime timesheet",
    "satellite orbit telemetry",
    "violin rosin bowing",
]


def _non_matching_condition(i: int) -> dict[str, Any]:
    """A condition the benchmark's requests never satisfy; the kinds take turns, as in a real rule set."""
    kind = i % 8
    if kind in (0, 1, 2):
        words = [*_TOPICS[i % len(_TOPICS)].split(), f"sku{i:04d}", f"project-{i}"]
        return {"keywords": words}
    if kind == 3:
        return {"regex": rf"\b(?:ORD|TCK)-{i:03d}\d{{4}}\b"}
    if kind == 4:
        return {"tenant": [f"tenant-{i}", f"tenant-{i + 1}"]}
    if kind == 5:
        return {"metadata": {"team": f"team-{i}"}}
    if kind == 6:
        return {"all": [{"has_tools": True}, {"min_tokens": 1000 + i}]}
    return {"any": [{"has_images": True}, {"keywords": [f"campaign-{i}", f"region-{i}"]}]}


def rules_config() -> dict[str, Any]:
    """4 simulated models, one route and 200 rules: 197 that these requests never match, then 3 that some do."""
    models = [
        {
            "id": model_id,
            "provider": "simulated",
            "model_id": model_id,
            "region": region,
            "price": {"input_per_mtok": price_in, "output_per_mtok": price_out},
            "context_window": 128000,
            "capabilities": ["tools", "images", "json"],
        }
        for model_id, region, price_in, price_out in (
            ("fast", "us-east-1", 0.035, 0.14),
            ("code", "us-east-1", 1.0, 5.0),
            ("strong", "us-east-1", 3.0, 15.0),
            ("eu", "eu-central-1", 0.078, 0.312),
        )
    ]
    routes = [{"id": ROUTE, "default": ["fast", "strong"], "baseline": "strong"}]
    rules: list[dict[str, Any]] = [
        {
            "id": "pii-stays-in-eu",
            "route": ROUTE,
            "priority": 1,
            "description": "Requests with personal data are answered in the EU only",
            "when": {"pii": True},
            "then": {"targets": ["eu"]},
            "regions": ["eu-*"],
        }
    ]
    for i in range(2, RULE_COUNT - 2):
        rules.append(
            {
                "id": f"rule-{i:03d}",
                "route": ROUTE,
                "priority": i,
                "when": _non_matching_condition(i),
                "then": {"targets": ["strong", "fast"] if i % 2 else ["fast", "strong"]},
            }
        )
    rules += [
        {
            "id": "code-to-code-model",
            "route": ROUTE,
            "priority": RULE_COUNT - 2,
            "when": {
                "any": [
                    {"keywords": ["python", "javascript", "traceback", "stack trace", "exception", "compile"]},
                    {"regex": r"def \w+\(|```|=>|\bimport \w+"},
                ]
            },
            "then": {"targets": ["code", "strong"]},
        },
        {
            "id": "long-to-strong",
            "route": ROUTE,
            "priority": RULE_COUNT - 1,
            "when": {"min_tokens": 400},
            "then": {"targets": ["strong", "fast"]},
        },
        {
            "id": "disabled-experiment",
            "route": ROUTE,
            "priority": RULE_COUNT,
            "enabled": False,
            "when": {},
            "then": {"targets": ["eu"]},
        },
    ]
    assert len(rules) == RULE_COUNT
    return {"models": models, "routes": routes, "rules": rules}


# -- statistics and guards ----------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in seconds)
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1],
        "mean_ms": sum(values) / len(values),
    }


_blocked: list[str] = []


def loopback_only() -> list[str]:
    """Refuse (and remember) any connection beyond loopback: the benchmark must not reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and str(address[0]) not in ("127.0.0.1", "localhost", "::1"):
            _blocked.append(str(address[0]))
            raise ConnectionRefusedError(f"benchmark may only reach loopback, not {address!r}")
        return real_connect(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    return _blocked


def peak_rss_mib() -> float:
    """Peak resident set size of this process (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_config(path: Path = CONFIG_PATH) -> None:
    """Regenerate bench/rules-200.yaml from `rules_config()`."""
    import yaml

    header = "# Generated by `python bench/workload.py` from rules_config(): the overhead benchmark's config.\n"
    body = yaml.safe_dump(rules_config(), sort_keys=False, width=120, default_flow_style=None)
    path.write_text(header + body, encoding="utf-8")


if __name__ == "__main__":
    write_config()
    print(f"wrote {CONFIG_PATH.relative_to(ROOT)}")
