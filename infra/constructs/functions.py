"""Lambda functions with the project's defaults set once: Python on arm64, the shared library and Powertools as
layers, JSON logs with a retention, tracing only when asked for, and a role of their own that starts empty.

Code comes straight from folders (`functions/<name>/`, `layers/common/`): no bundling step, no container.
Third-party packages come from the AWS-managed Powertools layer, which carries pydantic v2 built for this exact
runtime and architecture; boto3 and urllib3 come with the Lambda runtime itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.assets import CODE_EXCLUDES, LAYER_EXCLUDES
from infra.settings import StackSettings
from llm_router.settings import METRICS_NAMESPACE, SERVICE_NAME, Env

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
LAYER_DIR = ROOT / "layers" / "common"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# `python3.14` -> `python314`, as the Powertools layer names spell it.
PYTHON_TAG = RUNTIME.name.replace(".", "")
POWERTOOLS_ACCOUNT = "017000801446"


def powertools_ssm_parameter(version: str) -> str:
    """AWS's public SSM parameter that holds the layer ARN of Powertools `version` in each region."""
    return f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{version}"


def powertools_layer_arn(layer_version: int) -> str:
    """The Powertools v3 layer ARN for this runtime and architecture, in the region the stack deploys to."""
    name = f"AWSLambdaPowertoolsPythonV3-{PYTHON_TAG}-{ARCHITECTURE.name}"
    return f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:{name}:{layer_version}"


class Functions(Construct):
    """The two layers, and `add_function` that creates a function in `functions/<folder>/` with every default."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.common_layer = lambda_.LayerVersion(
            self,
            "CommonLayer",
            code=lambda_.Code.from_asset(str(LAYER_DIR), exclude=self._layer_excludes(settings)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="llm-router: the shared llm_router library",
            removal_policy=RemovalPolicy.DESTROY,
        )
        if settings.powertools_layer_version is not None:
            arn = powertools_layer_arn(settings.powertools_layer_version)
        else:
            # Resolved by CloudFormation at deploy time, in the target region: the same Powertools release as
            # pyproject.toml pins, with no layer number to look up per region and no lookup at synth time.
            arn = ssm.StringParameter.value_for_string_parameter(
                self, powertools_ssm_parameter(settings.powertools_version)
            )
        self.powertools_layer = lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", arn)
        self.functions: list[lambda_.Function] = []

    @staticmethod
    def _layer_excludes(settings: StackSettings) -> list[str]:
        # The shutdown extension (extensions/llm-router-shutdown) is there to flush buffered usage counters; with
        # usageFlushSeconds 0 nothing is buffered, and the layer goes without it.
        return LAYER_EXCLUDES + (["extensions"] if settings.usage_flush_seconds == 0 else [])

    def environment(self) -> dict[Env, str]:
        """Powertools settings every function shares."""
        return {
            Env.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
            Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            Env.POWERTOOLS_LOG_LEVEL: self._settings.log_level,
            Env.POWERTOOLS_LOGGER_LOG_EVENT: "false",
            Env.POWERTOOLS_TRACE_ENABLED: str(self._settings.tracing_enabled).lower(),
            # Responses carry prompts and answers; they never go into traces.
            Env.POWERTOOLS_TRACER_CAPTURE_RESPONSE: "false",
        }

    def add_function(
        self,
        construct_id: str,
        *,
        folder: str,
        description: str,
        timeout: Duration,
        memory_size: int = 256,
        environment: Mapping[Env, str] | None = None,
    ) -> lambda_.Function:
        """A function running `functions/<folder>/handler.py:lambda_handler`, with its own log group and role."""
        if not (FUNCTIONS_DIR / folder / "handler.py").is_file():
            raise ValueError(f"functions/{folder}/handler.py does not exist")
        settings = self._settings
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A role of its own with no managed policy: it may write to its own log group and get nothing else
        # until the stack grants it something.
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"llm-router {folder} function",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / folder), exclude=CODE_EXCLUDES),
            layers=[self.powertools_layer, self.common_layer],
            memory_size=memory_size,
            timeout=timeout,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(settings.log_level),
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing_enabled else lambda_.Tracing.DISABLED,
            # Plain strings for jsii, which would take an enum member for a jsii enum.
            environment={name.value: value for name, value in {**self.environment(), **(environment or {})}.items()},
        )
        self.functions.append(function)
        return function
