"""`llm-router doctor [--region R]`: preflight checks of an account and region before `cdk deploy`.

Each check prints one line, `ok`, `fail` or `skip`, with what it found and, when it failed, the fix. It reads
the deploy settings from `cdk.json` (and `-c key=value`, as `cdk deploy` takes them) and the model catalog from
the config file you will import (the packaged example by default). It only reads: nothing in the account changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from llm_router.cli.common import CliError, read_document
from llm_router.schemas.catalog import ModelSpec

# What the stack deploys the functions on (infra/constructs/functions.py; a test keeps the two equal).
LAMBDA_RUNTIME = "python3.13"
LAMBDA_ARCHITECTURE = "arm64"
BOOTSTRAP_STACK = "CDKToolkit"
# Lambda keeps this much of the account's concurrency unreserved; reservations can only take the rest.
UNRESERVED_MINIMUM = 10
# Service Quotas code of Lambda's "Concurrent executions".
CONCURRENCY_QUOTA_CODE = "L-B99A9384"
# The context keys doctor reads, with the stack's defaults (infra/settings.py).
CONTEXT_DEFAULTS: dict[str, Any] = {
    "stackName": "LlmRouter",
    "powertoolsLayer": "managed",
    "powertoolsVersion": "3.37.0",
    "apiGatewayCloudWatchRole": True,
    "bedrockModelArns": [],
    "bedrockMarketplaceSubscribe": True,
    "throttleRateLimit": 10,
    "replayMaxConcurrency": 2,
    "routerReservedConcurrency": None,
    "replayReservedConcurrency": None,
}
_GEO_PROFILE = re.compile(r"^(?:us|eu|apac|global|jp|au|ca|us-gov)\.")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
STATUS_WIDTH = 5

# (service, region) -> a botocore client; tests give clients wired to botocore's Stubber.
ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # ok | fail | skip
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.status == "fail" and self.fix else ""
        return f"{self.status:<{STATUS_WIDTH}} {self.name}: {self.detail}{fix}"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def powertools_parameter(version: str) -> str:
    """AWS's public SSM parameter holding the managed Powertools layer ARN (the stack reads the same one)."""
    return f"/aws/service/powertools/python/{LAMBDA_ARCHITECTURE}/{LAMBDA_RUNTIME}/{version}"


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)


class Preflight:
    """The checks, run in order against one account and region."""

    def __init__(
        self, *, region: str, context: dict[str, Any], models: Sequence[ModelSpec], clients: ClientFactory
    ) -> None:
        self.region = region
        self.context = {**CONTEXT_DEFAULTS, **context}
        self.models = list(models)
        self.clients = clients
        self.account = ""
        self.partition = "aws"

    def run(self) -> list[Check]:
        credentials = self.check_credentials()
        if credentials.status == "fail":
            return [credentials]  # every other check needs a caller
        checks = [credentials, self.check_bootstrap(), self.check_powertools(), self.check_api_gateway_role()]
        checks += list(self.check_bedrock_models())
        checks += [self.check_provider_keys(), self.check_lambda_concurrency()]
        return checks

    def _client(self, service: str, region: str | None = None) -> Any:
        return self.clients(service, region or self.region)

    def check_credentials(self) -> Check:
        try:
            identity = self._client("sts").get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            return fail(
                "credentials",
                f"no usable AWS credentials ({_aws_error(exc)})",
                "configure credentials (aws configure, aws sso login, or AWS_PROFILE) and retry",
            )
        self.account = identity["Account"]
        self.partition = identity["Arn"].split(":")[1]
        return ok("credentials", f"account {self.account} as {identity['Arn']} in {self.region}")

    def check_bootstrap(self) -> Check:
        fix = f"cdk bootstrap aws://{self.account}/{self.region}"
        try:
            stacks = self._client("cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
        except ClientError as exc:
            return fail("bootstrap", f"no {BOOTSTRAP_STACK} stack in {self.region} ({_aws_error(exc)})", fix)
        status = stacks[0]["StackStatus"]
        if not status.endswith("_COMPLETE") or "ROLLBACK" in status or status.startswith("DELETE"):
            return fail("bootstrap", f"{BOOTSTRAP_STACK} is {status}", f"fix the stack in CloudFormation, then {fix}")
        return ok("bootstrap", f"{BOOTSTRAP_STACK} is {status}")

    def check_powertools(self) -> Check:
        if self.context["powertoolsLayer"] == "bundled":
            return ok("powertools layer", "bundled: built from infra/powertools-requirements.txt at synth time")
        name = powertools_parameter(str(self.context["powertoolsVersion"]))
        try:
            arn = self._client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as exc:
            return fail(
                "powertools layer",
                f"AWS publishes no managed layer here ({name}: {_aws_error(exc)})",
                "deploy with -c powertoolsLayer=bundled (pinned wheels built at synth time, any region)",
            )
        return ok("powertools layer", f"managed layer {arn}")

    def check_api_gateway_role(self) -> Check:
        try:
            role = self._client("apigateway").get_account().get("cloudwatchRoleArn")
        except ClientError as exc:
            return fail("api gateway logging role", _aws_error(exc), "allow apigateway:GET on /account")
        creates = bool(self.context["apiGatewayCloudWatchRole"])
        if creates and role:
            return ok(
                "api gateway logging role",
                f"already set ({role}); the stack will set its own. Keep yours with -c apiGatewayCloudWatchRole=false",
            )
        if creates:
            return ok("api gateway logging role", "not set; the stack creates it (apiGatewayCloudWatchRole)")
        if role:
            return ok("api gateway logging role", f"set to {role}")
        return fail(
            "api gateway logging role",
            "not set in this region, and apiGatewayCloudWatchRole is false: the stage's access logs cannot be created",
            "deploy with -c apiGatewayCloudWatchRole=true",
        )

    def _allowed_arns(self) -> set[str]:
        return {str(arn).replace("{account}", self.account) for arn in self.context["bedrockModelArns"]}

    def _model_region(self, model: ModelSpec) -> str:
        return model.region if model.region and _REGION.match(model.region) else self.region

    def check_bedrock_models(self) -> Iterator[Check]:
        bedrock_models = [m for m in self.models if m.provider == "bedrock"]
        if not bedrock_models:
            yield skip("bedrock models", "the catalog has no Bedrock model")
        for model in bedrock_models:
            yield self._check_bedrock_model(model)

    def _check_bedrock_model(self, model: ModelSpec) -> Check:
        name = f"bedrock model {model.id}"
        region = self._model_region(model)
        bedrock = self._client("bedrock", region)
        try:
            if _GEO_PROFILE.match(model.model_id) or ":inference-profile/" in model.model_id:
                profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model.model_id)
                required = [profile["inferenceProfileArn"], *(m["modelArn"] for m in profile["models"])]
            elif model.model_id.startswith("arn:"):
                required = [model.model_id]
            else:
                required = [f"arn:{self.partition}:bedrock:{region}::foundation-model/{model.model_id}"]
            foundation = [arn for arn in required if ":foundation-model/" in arn]
            access = self._access(bedrock, foundation[0].split("/", 1)[1]) if foundation else None
        except ClientError as exc:
            return fail(name, f"{model.model_id} in {region}: {_aws_error(exc)}", "check the model id and region")
        missing = [arn for arn in required if arn not in self._allowed_arns()]
        if missing:
            listed = ", ".join(json.dumps(arn.replace(f":{self.account}:", ":{account}:")) for arn in missing)
            return fail(
                name,
                f"{model.model_id}: bedrockModelArns does not cover {len(missing)} of its ARNs "
                "(an inference profile needs its foundation model in every destination region)",
                f"add to bedrockModelArns in cdk.json: {listed}",
            )
        if access:
            return fail(name, f"{model.model_id} in {region}: {access[0]}", access[1])
        return ok(name, f"{model.model_id} in {region}: available, {len(required)} ARN(s) allowed")

    def _access(self, bedrock: Any, model_id: str) -> tuple[str, str] | None:
        """What stands between this account and `model_id` (problem, fix), or None."""
        found = bedrock.get_foundation_model_availability(modelId=model_id)
        if found.get("regionAvailability") == "NOT_AVAILABLE":
            return "not offered in this region", "pick a region or inference profile that serves it"
        if found.get("authorizationStatus") == "NOT_AUTHORIZED":
            return (
                "denied to this account (IAM, an SCP, or Anthropic's use-case form not yet submitted)",
                "submit the use-case form in the Bedrock console's model catalog once, or lift the denying policy",
            )
        if found.get("entitlementAvailability") == "NOT_AVAILABLE" and not self.context["bedrockMarketplaceSubscribe"]:
            return (
                "not subscribed, and the router may not subscribe on its first call",
                "deploy with -c bedrockMarketplaceSubscribe=true, or call the model once from the console",
            )
        agreement = (found.get("agreementAvailability") or {}).get("status")
        if agreement == "ERROR":
            return "its Marketplace agreement failed", "check the account's payment method for Marketplace purchases"
        return None

    def _stack_outputs(self) -> dict[str, str] | None:
        try:
            stacks = self._client("cloudformation").describe_stacks(StackName=self.context["stackName"])["Stacks"]
        except ClientError:
            return None
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def check_provider_keys(self) -> Check:
        refs = sorted({m.api_key_ref for m in self.models if m.provider != "bedrock" and m.api_key_ref})
        if not refs:
            return ok("provider keys", "no external model needs a key")
        outputs = self._stack_outputs()
        if outputs is None or "ProviderKeysSecretArn" not in outputs:
            return skip("provider keys", f"deploy first, then put keys for {', '.join(refs)} into the secret")
        secret = outputs["ProviderKeysSecretArn"]
        put = f"aws secretsmanager put-secret-value --secret-id {secret} --secret-string file://provider-keys.json"
        try:
            keys = json.loads(self._client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
        except ClientError as exc:
            return fail(
                "provider keys", f"cannot read {secret}: {_aws_error(exc)}", "allow secretsmanager:GetSecretValue"
            )
        except (ValueError, TypeError):
            return fail("provider keys", "the secret is not a JSON map", put)
        missing = [ref for ref in refs if not (isinstance(keys, dict) and keys.get(ref))]
        if missing:
            return fail("provider keys", f"no entry for {', '.join(missing)}", put)
        return ok("provider keys", f"entries for {', '.join(refs)}")

    def check_lambda_concurrency(self) -> Check:
        try:
            limits = self._client("lambda").get_account_settings()["AccountLimit"]
        except ClientError as exc:
            return fail("lambda concurrency", _aws_error(exc), "allow lambda:GetAccountSettings")
        quota = int(limits["ConcurrentExecutions"])
        raise_quota = f"request more Lambda concurrency (Service Quotas, code {CONCURRENCY_QUOTA_CODE})"
        reserved = sum(
            int(self.context[key] or 0) for key in ("routerReservedConcurrency", "replayReservedConcurrency")
        )
        if reserved > quota - UNRESERVED_MINIMUM:
            return fail(
                "lambda concurrency",
                f"reserving {reserved} of a quota of {quota} leaves less than the {UNRESERVED_MINIMUM} Lambda keeps "
                "unreserved: the deploy would fail",
                f"drop routerReservedConcurrency/replayReservedConcurrency, or {raise_quota}",
            )
        # Each answer holds a router instance for at least a second: the stage's rate plus the replay workers must
        # fit in the quota, or callers see throttling errors before the stage throttles them.
        rate = int(self.context["throttleRateLimit"])
        needed = rate + int(self.context["replayMaxConcurrency"])
        if needed > quota:
            return fail(
                "lambda concurrency",
                f"throttleRateLimit {rate}/s plus {self.context['replayMaxConcurrency']} replay workers need more than "
                f"the quota of {quota} concurrent executions",
                f"lower throttleRateLimit to {max(1, quota - int(self.context['replayMaxConcurrency']))}, or "
                f"{raise_quota}",
            )
        return ok(
            "lambda concurrency",
            f"quota {quota}; stage {rate}/s and {self.context['replayMaxConcurrency']} replay workers fit at 1 s per "
            "answer (longer answers need proportionally more)",
        )


def read_context(path: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """cdk.json's context with `key=value` overrides, values parsed as JSON where they are JSON."""
    context: dict[str, Any] = {}
    if path.is_file():
        context.update(json.loads(path.read_text()).get("context", {}))
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise CliError(f"-c {override}: expected key=value")
        try:
            context[key] = json.loads(raw)
        except ValueError:
            context[key] = raw
    return context


def read_models(source: str | None) -> list[ModelSpec]:
    """The catalog's models from a config file (the packaged example when none is given)."""
    if source is None:
        from importlib import resources

        source = str(resources.files("llm_router").joinpath("data/example-config.yaml"))
    doc = read_document(source)
    try:
        return [ModelSpec.model_validate(entry) for entry in (doc or {}).get("models") or []]
    except (ValidationError, AttributeError) as exc:
        raise CliError(f"{source}: invalid models: {exc}") from None


def default_clients() -> ClientFactory:
    from llm_router.stores.aws import new_client

    made: dict[tuple[str, str], Any] = {}

    def factory(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[(service, region)] = new_client(service, region_name=region)
        return made[(service, region)]

    return factory


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("doctor", help="check an account and region before `cdk deploy`")
    p.add_argument("--region", help="the region to deploy to (default: $AWS_REGION or the profile's)")
    p.add_argument("--config", help="the config file you will import (default: the packaged example)")
    p.add_argument("--cdk-json", default="cdk.json", type=Path, help="deploy settings (default: ./cdk.json)")
    p.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as with cdk deploy")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, clients: ClientFactory | None = None) -> int:
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise CliError("no region: pass --region or set AWS_REGION")
    preflight = Preflight(
        region=region,
        context=read_context(args.cdk_json, args.context),
        models=read_models(args.config),
        clients=clients or default_clients(),
    )
    checks = preflight.run()
    for check in checks:
        print(check.line())
    failed = sum(c.status == "fail" for c in checks)
    print(f"{len(checks)} checks, {failed} failed" + ("" if failed else ": ready to deploy"))
    return 1 if failed else 0
