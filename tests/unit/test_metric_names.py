"""Every metric the dashboard and the alarms read is a `Metric` the library emits: a rename cannot empty a widget.

The template is the stack as `cdk synth` builds it; emission sites are found statically, as `Metric.X` references
in the library, or as a metric tuple `("Name", value, unit)` whose name is a string literal.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_router.metrics import Dimension, Metric
from llm_router.settings import METRICS_NAMESPACE

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "common" / "python" / "llm_router"
# `SEARCH('{LlmRouter,Model} MetricName="CostUSD"', ...)`
SEARCH = re.compile(r"\{(?P<namespace>[^,}]+)(?P<dimensions>(?:,[^,}]+)*)\}\s+MetricName=\\?\"(?P<metric>\w+)\\?\"")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    import os

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    pytest.importorskip("aws_cdk", reason="the CDK is a dev tool, absent from the runtime-Python environment")
    from aws_cdk import App

    from infra.settings import StackSettings
    from infra.stack import RouterStack
    from tests.infra.conftest import cdk_json_context

    app = App(context=cdk_json_context())
    settings = StackSettings.from_context(app.node)
    stack = RouterStack(app, settings.stack_name, settings=settings)
    return app.synth().get_stack_by_name(stack.stack_name).template  # type: ignore[no-any-return]


def _searches(text: str) -> Iterator[tuple[str, list[str], str]]:
    for match in SEARCH.finditer(text):
        yield match["namespace"], [d for d in match["dimensions"].split(",") if d], match["metric"]


def read_metrics(template: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(metric names, dimension names) in the router's namespace that alarms and dashboard widgets read."""
    metrics: set[str] = set()
    dimensions: set[str] = set()
    for resource in template["Resources"].values():
        props = resource["Properties"]
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            stats = [props, *(m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m)]
            for stat in stats:
                if stat.get("Namespace") == METRICS_NAMESPACE:
                    metrics.add(stat["MetricName"])
                    dimensions |= {d["Name"] for d in stat.get("Dimensions", [])}
            expressions = [m.get("Expression", "") for m in props.get("Metrics", [])]
        elif resource["Type"] == "AWS::CloudWatch::Dashboard":
            parts = props["DashboardBody"]["Fn::Join"][1]
            body = json.loads("".join(part if isinstance(part, str) else "REF" for part in parts))
            expressions = []
            for widget in body["widgets"]:
                for line in widget["properties"].get("metrics", []):
                    if isinstance(line[0], dict):
                        expressions.append(line[0].get("expression", ""))
                    elif line[0] == METRICS_NAMESPACE:
                        metrics.add(line[1])
                        names = [x for x in line[2:] if isinstance(x, str)]
                        dimensions |= set(names[0::2])
        else:
            continue
        for namespace, names, metric in (s for e in expressions for s in _searches(e)):
            if namespace == METRICS_NAMESPACE:
                metrics.add(metric)
                dimensions |= set(names)
    return metrics, dimensions


def emitted_metrics(sources: dict[str, str]) -> set[str]:
    """Metric names emitted by `sources` (path -> Python text): `Metric.X`, or ("Name", value, unit) literals."""
    by_member = {member.name: member.value for member in Metric}
    found: set[str] = set()
    for text in sources.values():
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Metric"
                and node.attr in by_member
            ):
                found.add(by_member[node.attr])
            elif (
                isinstance(node, ast.Tuple)
                and len(node.elts) == 3
                and isinstance(node.elts[0], ast.Constant)
                and isinstance(node.elts[0].value, str)
            ):
                found.add(node.elts[0].value)
    return found


def library_sources() -> dict[str, str]:
    return {
        str(path.relative_to(LIBRARY)): path.read_text(encoding="utf-8")
        for path in LIBRARY.rglob("*.py")
        if path != LIBRARY / "metrics.py"
    }


def test_every_metric_the_dashboard_and_alarms_read_is_a_metric_name(template: dict[str, Any]) -> None:
    # Given the metrics in the router's namespace that the synthesized alarms and widgets read
    metrics, _ = read_metrics(template)
    # Then there are some, and each is a member of Metric
    assert {Metric.COST_USD, Metric.REQUESTS, Metric.QUEUE_WRITE_FAILED} <= metrics
    assert metrics <= set(Metric), metrics - set(Metric)


def test_every_metric_the_dashboard_and_alarms_read_is_emitted_by_the_library(template: dict[str, Any]) -> None:
    metrics, _ = read_metrics(template)
    not_emitted = metrics - emitted_metrics(library_sources())
    assert not not_emitted, f"widgets or alarms read metrics nothing emits: {sorted(not_emitted)}"


def test_every_dimension_the_dashboard_and_alarms_read_is_a_dimension_name(template: dict[str, Any]) -> None:
    _, dimensions = read_metrics(template)
    assert {Dimension.SERVICE, Dimension.MODEL, Dimension.ROUTE, Dimension.PROVIDER} <= dimensions
    assert dimensions <= set(Dimension), dimensions - set(Dimension)


def test_emission_sites_are_metric_members_or_metric_tuples_and_nothing_else() -> None:
    # Given sources that name metrics in every way the scan knows, and a metric only mentioned in passing
    sources = {
        "a.py": "metrics.record([(Metric.BUDGET_EXCEEDED, 1, COUNT)], dimensions={})",
        "b.py": 'values = [("LatencyMs", total_ms, MS)]',
        "c.py": 'logger.info("SavedUSD is the baseline cost minus the cost", model="Queued")',
    }
    # Then the members and the tuples count as emitted, the mentions do not
    assert emitted_metrics(sources) == {"BudgetExceeded", "LatencyMs"}


def test_a_widget_naming_a_metric_nobody_emits_is_caught() -> None:
    # Given a dashboard with a widget reading a metric the library does not emit
    body = {"widgets": [{"properties": {"metrics": [[METRICS_NAMESPACE, "NeverEmitted", "service", "llm-router"]]}}]}
    template = {
        "Resources": {
            "Dashboard": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {"DashboardBody": {"Fn::Join": ["", [json.dumps(body)]]}},
            }
        }
    }
    # Then it is read, and it is not among the emitted metrics
    metrics, _ = read_metrics(template)
    assert metrics == {"NeverEmitted"}
    assert metrics - emitted_metrics(library_sources()) == {"NeverEmitted"}


def test_the_scan_finds_the_emission_sites_of_the_library() -> None:
    emitted = emitted_metrics(library_sources())
    # Budget counters are emitted through Metric members (accounting.py), request metrics from the gateway
    assert {Metric.BUDGET_EXCEEDED, Metric.BUDGET_DEGRADED, Metric.USAGE_WRITE_FAILED, Metric.COST_USD} <= emitted
