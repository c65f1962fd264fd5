"""Lambda functions with the project's defaults set once: Python on arm64, the shared library and Powertools as
layers, JSON logs with a retention, tracing only when asked for, and a role of their own that starts empty.

Code comes straight from folders (`functions/<name>/`, `layers/common/`): no bundling step, no container.
Third-party packages come from a Powertools layer (pydantic v2 included) built for this exact runtime and
architecture: AWS's managed one, or the pinned wheels of `infra/powertools-requirements.txt` installed for the
Lambda platform at synth time (`powertoolsLayer: bundled`). boto3 and urllib3 come with the Lambda runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.assets import CODE_EXCLUDES, LAYER_EXCLUDES
from infra.powertools_layer import COMPLETE_MARKER, build_powertools_layer
from infra.settings import StackSettings
from llm_router.settings import METRICS_NAMESPACE, SERVICE_NAME, Env

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
LAYER_DIR = ROOT / "layers" / "common"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# `python3.13` -> `3.13`, what pip's --python-version takes.
PYTHON_VERSION = RUNTIME.name.removeprefix("python")
# Builds the bundled layer for a Python version and returns its folder (tests pass one that builds nothing).
LayerBuilder = Callable[[str], Path]


def powertools_ssm_parameter(version: str) -> str:
    """AWS's public SSM parameter that holds the layer ARN of Powertools `version` in each region."""
    return f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{version}"


class Functions(Construct):
    """The two layers, and `add_function` that creates a function in `functions/<folder>/` with every default."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        build_layer: LayerBuilder = build_powertools_layer,
    ) -> None:
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
        self.powertools_layer = self._powertools_layer(settings, build_layer)
        self.functions: list[lambda_.Function] = []

    def _powertools_layer(self, settings: StackSettings, build_layer: LayerBuilder) -> lambda_.ILayerVersion:
        if settings.powertools_layer == "bundled":
            return lambda_.LayerVersion(
                self,
                "PowertoolsLayer",
                code=lambda_.Code.from_asset(str(build_layer(PYTHON_VERSION)), exclude=[COMPLETE_MARKER]),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description="llm-router: Powertools and pydantic, pinned (infra/powertools-requirements.txt)",
                removal_policy=RemovalPolicy.DESTROY,
            )
        # Resolved by CloudFormation at deploy time, in the target region and partition: the same Powertools
        # release as pyproject.toml pins, with no account id or layer number written here.
        arn = ssm.StringParameter.value_for_string_parameter(
            self, powertools_ssm_parameter(settings.powertools_version)
        )
        return lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", arn)

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
        reserved_concurrency: int | None = None,
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
            environment={str(name): value for name, value in {**self.environment(), **(environment or {})}.items()},
            reserved_concurrent_executions=reserved_concurrency,
        )
        self.functions.append(function)
        return function
