"""One synth for the whole infra suite: the stack with cdk.json's defaults, one with every optional feature
switched on and one with every default-on option switched off, in one app, checked by cdk-nag (jsii's start-up
dominates, so it is paid once)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]
BEDROCK_ARNS = (
    "arn:aws:bedrock:us-east-1:{account}:inference-profile/us.amazon.nova-micro-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
    "arn:aws:bedrock:us-east-2::foundation-model/amazon.nova-micro-v1:0",
    "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-micro-v1:0",
    "arn:aws:bedrock:eu-central-1::foundation-model/mistral.mistral-large-2402-v1:0",
)
ALARM_EMAIL = "ops@example.com"
OPERATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/llm-router-operators"
MARKETPLACE_PRODUCT_IDS = ("prod-abc123example",)
ADAPT_SCHEDULE = "rate(1 day)"


class FakeLayerBuilder:
    """Stands in for the pip build of the bundled Powertools layer: tests reach no package index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[str] = []

    def __call__(self, python_version: str) -> Path:
        self.calls.append(python_version)
        layer = self.root / f"powertools-{python_version}"
        package = layer / "python" / "aws_lambda_powertools"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (layer / ".complete").write_text("")
        return layer


@dataclass(frozen=True)
class Synth:
    """What the session's one synth produced."""

    outdir: Path
    default: Any  # aws_cdk.assertions.Template of the stack built from cdk.json as it is
    full: Any  # ... with WAF, tracing, Bedrock models, an alarm email, the bundled layer, reserved concurrency,
    # the adapt schedule
    default_json: dict[str, Any]
    full_json: dict[str, Any]
    minimal_json: dict[str, Any]  # ... with the API Gateway role and the Marketplace rights switched off
    full_settings: Any
    layer_builds: list[str]


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.settings import StackSettings
    from infra.stack import RouterStack, add_checks

    outdir = tmp_path_factory.mktemp("cdk.out")
    build_layer = FakeLayerBuilder(tmp_path_factory.mktemp("layers"))
    app = App(context=cdk_json_context(), outdir=str(outdir))
    defaults = StackSettings.from_context(app.node)
    full = replace(
        defaults,
        stack_name="LlmRouterFull",
        waf_enabled=True,
        tracing_enabled=True,
        alarm_email=ALARM_EMAIL,
        bedrock_model_arns=BEDROCK_ARNS,
        bedrock_marketplace_product_ids=MARKETPLACE_PRODUCT_IDS,
        powertools_layer="bundled",
        integration_timeout_seconds=600,
        authorizer_cache_ttl_seconds=300,
        cost_per_hour_alarm_usd=12.5,
        fallback_max_receive_count=7,
        replay_max_concurrency=5,
        router_reserved_concurrency=50,
        replay_reserved_concurrency=5,
        cors_allowed_origins=("https://app.example.com",),
        queue_operator_role_arns=(OPERATOR_ROLE_ARN,),
        adapt_schedule=ADAPT_SCHEDULE,
    )
    minimal = replace(
        defaults,
        stack_name="LlmRouterMinimal",
        api_gateway_cloudwatch_role=False,
        bedrock_marketplace_subscribe=False,
        integration_timeout_seconds=29,
    )
    default_stack = RouterStack(app, defaults.stack_name, settings=defaults, build_layer=build_layer)
    full_stack = RouterStack(app, full.stack_name, settings=full, build_layer=build_layer)
    minimal_stack = RouterStack(app, minimal.stack_name, settings=minimal, build_layer=build_layer)
    add_checks(app)
    # Raises when cdk-nag finds anything unacknowledged.
    assembly = app.synth()
    default_json = assembly.get_stack_by_name(default_stack.stack_name).template
    full_json = assembly.get_stack_by_name(full_stack.stack_name).template
    minimal_json = assembly.get_stack_by_name(minimal_stack.stack_name).template
    return Synth(
        outdir=outdir,
        default=Template.from_json(default_json),
        full=Template.from_json(full_json),
        default_json=default_json,
        full_json=full_json,
        minimal_json=minimal_json,
        full_settings=full,
        layer_builds=list(build_layer.calls),
    )
