"""Reading cdk.json context, and refusing what would deploy something broken or too open (no synth needed)."""

from __future__ import annotations

import pytest
from aws_cdk import App

from infra.constructs.bedrock import BedrockModels, validate_bedrock_arns
from infra.settings import StackSettings
from tests.infra.conftest import BEDROCK_ARNS, cdk_json_context


def test_cdk_json_context_gives_the_documented_defaults() -> None:
    settings = StackSettings.from_context(App(context=cdk_json_context()).node)
    assert settings == StackSettings()


def test_values_given_with_dash_c_arrive_as_strings_and_are_coerced() -> None:
    # Given context as `cdk deploy -c key=value` passes it
    context = {
        "wafEnabled": "true",
        "integrationTimeoutSeconds": "20",
        "costPerHourAlarmUsd": "2.5",
        "bedrockModelArns": '["arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"]',
        "powertoolsLayer": "bundled",
        "routerReservedConcurrency": "50",
        "apiGatewayCloudWatchRole": "false",
        "bedrockMarketplaceProductIds": '["prod-abc123example"]',
    }
    # When the settings are read
    settings = StackSettings.from_context(App(context=context).node)
    # Then each has its field's type
    assert settings.waf_enabled is True
    assert settings.integration_timeout_seconds == 20
    assert settings.cost_per_hour_alarm_usd == 2.5
    assert settings.bedrock_model_arns == ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",)
    assert settings.powertools_layer == "bundled"
    assert settings.router_reserved_concurrency == 50
    assert settings.api_gateway_cloudwatch_role is False
    assert settings.bedrock_marketplace_product_ids == ("prod-abc123example",)


def test_a_fresh_account_gets_the_role_the_marketplace_rights_and_unreserved_functions_by_default() -> None:
    settings = StackSettings()
    assert settings.api_gateway_cloudwatch_role is True
    assert settings.bedrock_marketplace_subscribe is True
    assert settings.router_reserved_concurrency is None
    assert settings.replay_reserved_concurrency is None
    assert settings.powertools_layer == "managed"
    # A new account's Lambda concurrency quota can be 10; the stage starts at what it can serve.
    assert settings.throttle_rate_limit <= 10


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("wafEnabled", "yes"),
        ("logRetentionDays", 10),
        ("logLevel", "WARNING"),
        ("integrationTimeoutSeconds", 0),
        ("alarmEmail", "not-an-email"),
        ("powertoolsVersion", "latest"),
        ("bedrockModelArns", "arn:aws:bedrock:us-east-1::foundation-model/x"),
        ("stageName", "prod/v1"),
        ("integrationTimeoutSeconds", 900),
        ("powertoolsLayer", "docker"),
        ("replayMaxConcurrency", 1),
        ("routerReservedConcurrency", 0),
        ("replayReservedConcurrency", 1),
        ("bedrockMarketplaceProductIds", '["anthropic"]'),
    ],
)
def test_invalid_context_is_refused_with_the_key_named(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        StackSettings.from_context(App(context={key: value}).node)


def test_the_bedrock_arns_of_the_tests_are_valid() -> None:
    assert validate_bedrock_arns(BEDROCK_ARNS) == []


def test_an_inference_profile_without_its_destination_models_is_refused() -> None:
    profile = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    with pytest.raises(ValueError, match="destination region"):
        BedrockModels((profile,))


def test_wildcard_and_non_bedrock_arns_are_refused() -> None:
    problems = validate_bedrock_arns(
        [
            "arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0",
            "arn:aws:s3:::my-bucket",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
        ]
    )
    assert len(problems) == 3
    assert "wildcard" in problems[0]
    assert "not a Bedrock" in problems[1]
    assert "twice" in problems[2]


def test_prompt_routers_and_application_profiles_are_accepted() -> None:
    assert (
        validate_bedrock_arns(
            [
                "arn:aws:bedrock:us-east-1:{account}:default-prompt-router/anthropic.claude:1",
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
            ]
        )
        == []
    )
