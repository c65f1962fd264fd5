"""`llm-router doctor`: each preflight check against AWS answers recorded with botocore's Stubber."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from llm_router.cli import doctor
from llm_router.cli.doctor import Preflight, powertools_parameter
from llm_router.cli.main import build_parser
from llm_router.schemas.catalog import ModelSpec

ACCOUNT = "123456789012"
REGION = "us-east-1"
PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
FOUNDATION = "anthropic.claude-haiku-4-5-20251001-v1:0"
DESTINATIONS = ("us-east-1", "us-east-2", "us-west-2")
PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{PROFILE}"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:keys-AbCdEf"


def _foundation_arn(region: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{FOUNDATION}"


ALL_ARNS = [
    f"arn:aws:bedrock:{REGION}:{{account}}:inference-profile/{PROFILE}",
    *(_foundation_arn(r) for r in DESTINATIONS),
]
MODELS = [
    ModelSpec(id="haiku", provider="bedrock", model_id=PROFILE, region=REGION),
    ModelSpec(
        id="gpt", provider="openai", model_id="gpt-4o-mini", base_url="https://api.openai.com/v1", api_key_ref="OPENAI"
    ),
]


class Aws:
    """One stubbed client per (service, region); every response a test adds must be used."""

    def __init__(self) -> None:
        self._session = botocore.session.get_session()
        self._clients: dict[tuple[str, str], tuple[Any, Stubber]] = {}

    def stub(self, service: str, region: str = REGION) -> Stubber:
        if (service, region) not in self._clients:
            client = self._session.create_client(
                service, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
            )
            stubber = Stubber(client)
            stubber.activate()
            self._clients[(service, region)] = (client, stubber)
        return self._clients[(service, region)][1]

    def client(self, service: str, region: str) -> Any:
        self.stub(service, region)
        return self._clients[(service, region)][0]

    def assert_all_used(self) -> None:
        for _, stubber in self._clients.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def aws() -> Iterator[Aws]:
    stubs = Aws()
    yield stubs
    stubs.assert_all_used()


def _identity(aws: Aws) -> None:
    aws.stub("sts").add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops", "UserId": "AIDAEXAMPLE"},
    )


def _availability(aws: Aws, **overrides: Any) -> None:
    answer = {
        "modelId": FOUNDATION,
        "agreementAvailability": {"status": "AVAILABLE"},
        "authorizationStatus": "AUTHORIZED",
        "entitlementAvailability": "AVAILABLE",
        "regionAvailability": "AVAILABLE",
        **overrides,
    }
    aws.stub("bedrock").add_response("get_foundation_model_availability", answer, {"modelId": FOUNDATION})


def _profile(aws: Aws) -> None:
    aws.stub("bedrock").add_response(
        "get_inference_profile",
        {
            "inferenceProfileName": "US Claude Haiku 4.5",
            "inferenceProfileArn": PROFILE_ARN,
            "inferenceProfileId": PROFILE,
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
            "models": [{"modelArn": _foundation_arn(r)} for r in DESTINATIONS],
        },
        {"inferenceProfileIdentifier": PROFILE},
    )


def _healthy_account(aws: Aws, *, quota: int = 1000) -> None:
    _identity(aws)
    cloudformation = aws.stub("cloudformation")
    cloudformation.add_response(
        "describe_stacks",
        {"Stacks": [{"StackName": "CDKToolkit", "StackStatus": "UPDATE_COMPLETE", "CreationTime": "2026-01-01"}]},
        {"StackName": "CDKToolkit"},
    )
    aws.stub("ssm").add_response(
        "get_parameter",
        {"Parameter": {"Name": powertools_parameter("3.37.0"), "Value": "arn:aws:lambda:us-east-1:0:layer:pt:41"}},
        {"Name": powertools_parameter("3.37.0")},
    )
    aws.stub("apigateway").add_response("get_account", {})
    _profile(aws)
    _availability(aws)
    cloudformation.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "LlmRouter",
                    "StackStatus": "CREATE_COMPLETE",
                    "CreationTime": "2026-01-01",
                    "Outputs": [{"OutputKey": "ProviderKeysSecretArn", "OutputValue": SECRET_ARN}],
                }
            ]
        },
        {"StackName": "LlmRouter"},
    )
    aws.stub("secretsmanager").add_response(
        "get_secret_value", {"SecretString": json.dumps({"OPENAI": "sk-x"})}, {"SecretId": SECRET_ARN}
    )
    aws.stub("lambda").add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": quota}},
    )


def _preflight(aws: Aws, **context: Any) -> Preflight:
    return Preflight(
        region=REGION, context={"bedrockModelArns": ALL_ARNS, **context}, models=MODELS, clients=aws.client
    )


def _by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_a_ready_account_passes_every_check(aws: Aws) -> None:
    _healthy_account(aws)
    checks = _preflight(aws).run()
    assert [c.status for c in checks] == ["ok"] * len(checks)
    assert [c.name for c in checks] == [
        "credentials",
        "bootstrap",
        "powertools layer",
        "api gateway logging role",
        "bedrock model haiku",
        "provider keys",
        "lambda concurrency",
    ]
    assert ACCOUNT in checks[0].detail


def test_without_credentials_doctor_stops_and_says_how_to_get_them(aws: Aws) -> None:
    aws.stub("sts").add_client_error("get_caller_identity", "InvalidClientTokenId", "The token is invalid")
    [check] = _preflight(aws).run()
    assert (check.status, check.name) == ("fail", "credentials")
    assert "aws configure" in check.fix


def test_a_region_never_bootstrapped_gets_the_bootstrap_command(aws: Aws) -> None:
    _identity(aws)
    aws.stub("cloudformation").add_client_error(
        "describe_stacks", "ValidationError", "Stack with id CDKToolkit does not exist"
    )
    preflight = _preflight(aws)
    preflight.check_credentials()
    check = preflight.check_bootstrap()
    assert check.status == "fail"
    assert check.fix == f"cdk bootstrap aws://{ACCOUNT}/{REGION}"


def test_a_region_without_the_managed_powertools_layer_points_to_the_bundled_one(aws: Aws) -> None:
    aws.stub("ssm").add_client_error("get_parameter", "ParameterNotFound", "not found")
    check = _preflight(aws).check_powertools()
    assert check.status == "fail"
    assert "powertoolsLayer=bundled" in check.fix
    # And with the bundled layer chosen, no parameter is needed
    assert _preflight(aws, powertoolsLayer="bundled").check_powertools().status == "ok"


def test_the_api_gateway_role_is_needed_when_the_stack_does_not_create_it(aws: Aws) -> None:
    aws.stub("apigateway").add_response("get_account", {})
    check = _preflight(aws, apiGatewayCloudWatchRole=False).check_api_gateway_role()
    assert check.status == "fail"
    assert "apiGatewayCloudWatchRole=true" in check.fix


def test_an_existing_api_gateway_role_is_reported_with_how_to_keep_it(aws: Aws) -> None:
    aws.stub("apigateway").add_response("get_account", {"cloudwatchRoleArn": "arn:aws:iam::1:role/existing"})
    check = _preflight(aws).check_api_gateway_role()
    assert check.status == "ok"
    assert "apiGatewayCloudWatchRole=false" in check.detail


def test_an_inference_profile_must_be_covered_in_every_destination_region(aws: Aws) -> None:
    # Given cdk.json listing the profile and its model in one destination region only
    _identity(aws)
    _profile(aws)
    _availability(aws)
    preflight = _preflight(aws, bedrockModelArns=ALL_ARNS[:2])
    preflight.check_credentials()
    # When the model is checked
    [check] = list(preflight.check_bedrock_models())
    # Then it fails and names exactly the missing ARNs to add
    assert check.status == "fail"
    for region in DESTINATIONS[1:]:
        assert _foundation_arn(region) in check.fix
    assert _foundation_arn(DESTINATIONS[0]) not in check.fix


def test_a_model_denied_to_the_account_asks_for_the_use_case_form(aws: Aws) -> None:
    _identity(aws)
    _profile(aws)
    _availability(aws, authorizationStatus="NOT_AUTHORIZED")
    preflight = _preflight(aws)
    preflight.check_credentials()
    [check] = list(preflight.check_bedrock_models())
    assert check.status == "fail"
    assert "use-case form" in check.fix


def test_an_unsubscribed_model_is_fine_when_the_router_may_subscribe(aws: Aws) -> None:
    for flag, expected in ((True, "ok"), (False, "fail")):
        _identity(aws)
        _profile(aws)
        _availability(aws, entitlementAvailability="NOT_AVAILABLE", agreementAvailability={"status": "NOT_AVAILABLE"})
        preflight = _preflight(aws, bedrockMarketplaceSubscribe=flag)
        preflight.check_credentials()
        [check] = list(preflight.check_bedrock_models())
        assert check.status == expected, flag


def test_a_missing_provider_key_names_the_entry_and_the_command(aws: Aws) -> None:
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "LlmRouter",
                    "StackStatus": "CREATE_COMPLETE",
                    "CreationTime": "2026-01-01",
                    "Outputs": [{"OutputKey": "ProviderKeysSecretArn", "OutputValue": SECRET_ARN}],
                }
            ]
        },
    )
    aws.stub("secretsmanager").add_response("get_secret_value", {"SecretString": "{}"})
    check = _preflight(aws).check_provider_keys()
    assert check.status == "fail"
    assert "OPENAI" in check.detail
    assert "put-secret-value" in check.fix


def test_provider_keys_wait_for_the_first_deploy(aws: Aws) -> None:
    aws.stub("cloudformation").add_client_error("describe_stacks", "ValidationError", "does not exist")
    check = _preflight(aws).check_provider_keys()
    assert check.status == "skip"
    assert "OPENAI" in check.detail


@pytest.mark.parametrize(
    ("quota", "context", "fix"),
    [
        (10, {}, "lower throttleRateLimit to 8"),
        (50, {"routerReservedConcurrency": 40, "replayReservedConcurrency": 5}, "drop routerReservedConcurrency"),
    ],
)
def test_the_concurrency_quota_must_hold_the_throttles_and_reservations(
    aws: Aws, quota: int, context: dict[str, Any], fix: str
) -> None:
    aws.stub("lambda").add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": quota}},
    )
    check = _preflight(aws, **context).check_lambda_concurrency()
    assert check.status == "fail"
    assert fix in check.fix
    assert "L-B99A9384" in check.fix


def test_the_command_prints_one_line_per_check_and_fails_on_any_failure(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ready account but a Lambda quota of 10 (a new account's)
    _healthy_account(aws, quota=10)
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"bedrockModelArns": ALL_ARNS, "throttleRateLimit": 5}}))
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"models": [m.model_dump(mode="json", exclude_defaults=True) for m in MODELS]}))
    args = build_parser().parse_args(
        [
            "doctor",
            "--region",
            REGION,
            "--config",
            str(config),
            "--cdk-json",
            str(cdk_json),
            "-c",
            "throttleRateLimit=20",
        ]
    )
    # When doctor runs
    code = doctor.run(args, clients=aws.client)
    lines = capsys.readouterr().out.splitlines()
    # Then each check is one line starting with its status, the failed one with its fix, and the exit code says so
    assert code == 1
    assert len(lines) == 8
    assert all(line.split()[0] in ("ok", "fail", "skip") for line in lines[:-1])
    [failed] = [line for line in lines if line.startswith("fail")]
    assert failed.startswith("fail  lambda concurrency:") and "-> fix: lower throttleRateLimit to 8" in failed
    assert lines[-1] == "7 checks, 1 failed"


def test_doctor_checks_the_runtime_the_stack_deploys() -> None:
    pytest.importorskip("aws_cdk")
    from infra.constructs.functions import ARCHITECTURE, RUNTIME

    assert RUNTIME.name == doctor.LAMBDA_RUNTIME
    assert ARCHITECTURE.name == doctor.LAMBDA_ARCHITECTURE


def test_context_overrides_parse_like_cdk(tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"throttleRateLimit": 10, "stackName": "A"}}))
    context = doctor.read_context(path, ["throttleRateLimit=3", "stackName=B", "powertoolsLayer=bundled"])
    assert context == {"throttleRateLimit": 3, "stackName": "B", "powertoolsLayer": "bundled"}
