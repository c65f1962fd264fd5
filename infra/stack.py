"""RouterStack: wires the constructs together, grants each function what it needs, and runs cdk-nag.

Every cdk-nag acknowledgement lives in `_acknowledge_findings`, each with the reason it is safe here.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, Duration, Stack, Tags, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct

from infra.constructs.api import RouterApi
from infra.constructs.bedrock import BedrockModels, grant_marketplace_subscription
from infra.constructs.fallback_queue import FallbackQueue
from infra.constructs.functions import RUNTIME, Functions, LayerBuilder
from infra.constructs.monitoring import Monitoring
from infra.constructs.secrets import ProviderKeys
from infra.constructs.tables import Tables
from infra.constructs.waf import ApiFirewall
from infra.powertools_layer import build_powertools_layer
from infra.settings import StackSettings
from llm_router.schemas.records import ADAPTATION_PARTITION, CONFIG_KINDS, KEY_PARTITION
from llm_router.settings import Env

# The Config partitions the router reads: the catalog and rules, the routes' active adaptations, and the tenant and
# price items it reads as they are added. Never `apikey`: only the authorizer sees key hashes.
ROUTER_CONFIG_PARTITIONS = (*CONFIG_KINDS, ADAPTATION_PARTITION, "tenant", "price")
# The State-table partitions of outcome records (`outcomes#<route>#<day>`, stores/outcome_store.py): all the
# scheduled adapt function may read there.
OUTCOME_PARTITIONS = "outcomes#*"
# Fitting is pure Python over at most a few thousand outcomes per route, a few seconds each.
ADAPT_TIMEOUT = Duration.minutes(5)
# Time the router keeps after API Gateway has given up, to queue the request instead of losing it.
ROUTER_TIMEOUT_MARGIN = Duration.seconds(3)
# One message per replay invocation: each gets the whole deadline, and a slow one cannot time out a batch whose
# untried messages would spend a receive (and reach the dead-letter queue never tried).
REPLAY_BATCH_SIZE = 1
# AWS's guidance for SQS event sources: a visibility timeout of at least six times the function timeout, so a
# message is not received again while its replay (and Lambda's retries of a throttled batch) still run.
VISIBILITY_TIMEOUT_FACTOR = 6
# The response streaming runtime loop in the shared layer (layers/common/llm-router-runtime) starts the handler;
# the flag tells the library its answers are streamed.
ROUTER_RUNTIME_WRAPPER = "/opt/llm-router-runtime"


class RouterStack(Stack):
    """The whole router in one stack: API, functions, tables, secret, fallback queue, dashboard and alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        build_layer: LayerBuilder = build_powertools_layer,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="llm-router: OpenAI-compatible LLM gateway (rules, fallbacks, cost metrics)",
            **kwargs,
        )
        self.settings = settings
        bedrock = BedrockModels(settings.bedrock_model_arns)
        # Encrypts what holds prompts and tenants: the State table, the fallback queue and its dead-letter queue.
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="llm-router: request bodies, tenants and results (State table, fallback queues)",
            enable_key_rotation=True,
        )
        self.tables = Tables(self, "Tables", state_key=self.data_key)
        self.provider_keys = ProviderKeys(self, "ProviderKeys")
        timeout = settings.integration_timeout_seconds
        # The router outlives API Gateway's wait by the margin; a replay gets the same time as a live request.
        function_timeout = Duration.seconds(timeout + ROUTER_TIMEOUT_MARGIN.to_seconds())
        self.fallback = FallbackQueue(
            self,
            "FallbackQueue",
            max_receive_count=settings.fallback_max_receive_count,
            encryption_key=self.data_key,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * function_timeout.to_seconds()),
        )

        self.functions = Functions(self, "Functions", settings=settings, build_layer=build_layer)
        # What both functions running the gateway read (GatewaySettings); each adds its own below.
        gateway_environment = {
            Env.CONFIG_TABLE_NAME: self.tables.config_table.table_name,
            Env.STATE_TABLE_NAME: self.tables.state_table.table_name,
            Env.PROVIDER_KEYS_SECRET_ID: self.provider_keys.secret.secret_arn,
            Env.FALLBACK_QUEUE_URL: self.fallback.queue.queue_url,
            Env.RULES_TTL_SECONDS: str(settings.rules_ttl_seconds),
            Env.USAGE_FLUSH_SECONDS: str(settings.usage_flush_seconds),
            Env.OUTCOME_RETENTION_DAYS: str(settings.outcome_retention_days),
            Env.METRICS_SINK: "stdout",
            Env.REQUEST_TIMEOUT_SECONDS: str(timeout),
        }
        self.router = self.functions.add_function(
            "Router",
            folder="router",
            description="llm-router: routes OpenAI-compatible requests to models",
            timeout=function_timeout,
            memory_size=settings.router_memory_mb,
            environment={
                **gateway_environment,
                Env.MAX_BODY_BYTES: str(settings.max_request_bytes),
                **(
                    {Env.CORS_ALLOWED_ORIGINS: ",".join(settings.cors_allowed_origins)}
                    if settings.cors_allowed_origins
                    else {}
                ),
                # The runtime loop in the layer streams the responses (docs/runtime.md).
                Env.EXEC_WRAPPER: ROUTER_RUNTIME_WRAPPER,
                Env.STREAMING_RESPONSES: "true",
            },
            reserved_concurrency=settings.router_reserved_concurrency,
        )
        # The replay worker runs the same gateway over the fallback queue: the gateway's settings (ReplaySettings),
        # with its own deadline and the receive count at which a request is given up.
        self.replay = self.functions.add_function(
            "Replay",
            folder="replay",
            description="llm-router: answers requests waiting in the fallback queue",
            timeout=function_timeout,
            memory_size=settings.router_memory_mb,
            environment={**gateway_environment, Env.MAX_RECEIVE_COUNT: str(settings.fallback_max_receive_count)},
            reserved_concurrency=settings.replay_reserved_concurrency,
        )
        # Maximum concurrency holds the replay workers to a few instances during an outage, so a full queue
        # cannot take the concurrency the router needs (and, unlike reserved concurrency, never throttles).
        self.replay.add_event_source(
            lambda_event_sources.SqsEventSource(
                self.fallback.queue,
                batch_size=REPLAY_BATCH_SIZE,
                max_concurrency=settings.replay_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.authorizer = self.functions.add_function(
            "Authorizer",
            folder="authorizer",
            description="llm-router: checks Bearer API keys against their hashes",
            timeout=Duration.seconds(10),
            environment={Env.CONFIG_TABLE_NAME: self.tables.config_table.table_name},
        )

        for gateway_function in (self.router, self.replay):
            self.tables.grant_config_read(gateway_function, ROUTER_CONFIG_PARTITIONS)
            self.tables.state_table.grant_read_write_data(gateway_function)
            self.provider_keys.secret.grant_read(gateway_function)
            bedrock.grant_invoke(gateway_function)
            if settings.bedrock_marketplace_subscribe:
                grant_marketplace_subscription(gateway_function, settings.bedrock_marketplace_product_ids)
        assert self.router.role is not None
        self.fallback.grant_send(self.router.role, settings.queue_operator_role_arns)
        self.tables.grant_config_read(self.authorizer, [KEY_PARTITION], actions=["dynamodb:GetItem"])
        self.adapt = self._adapt_on_schedule(settings) if settings.adapt_schedule else None

        self.api = RouterApi(self, "Api", settings=settings, router=self.router, authorizer=self.authorizer)
        self.firewall = (
            ApiFirewall(
                self,
                "Firewall",
                stage=self.api.stage,
                rate_limit_per_5_minutes=settings.waf_rate_limit_per_5_minutes,
            )
            if settings.waf_enabled
            else None
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            stage=self.api.stage,
            functions=self.functions.functions,
            queue=self.fallback.queue,
            dead_letter_queue=self.fallback.dead_letter_queue,
        )

        Tags.of(self).add("project", "llm-router")
        self._outputs()
        self._acknowledge_findings()

    def _adapt_on_schedule(self, settings: StackSettings) -> lambda_.Function:
        """The opt-in scheduled adapt function: it reads routes and outcome records, and may write only adaptation
        items (new versions, the active pointer) in the Config table."""
        function = self.functions.add_function(
            "Adapt",
            folder="adapt",
            description="llm-router: re-fits learning routes from their outcomes, promotes what beats the current",
            timeout=ADAPT_TIMEOUT,
            memory_size=settings.router_memory_mb,
            environment={
                Env.CONFIG_TABLE_NAME: self.tables.config_table.table_name,
                Env.STATE_TABLE_NAME: self.tables.state_table.table_name,
                # Outcomes are read as far back as the router keeps them.
                Env.OUTCOME_RETENTION_DAYS: str(settings.outcome_retention_days),
            },
        )
        self.tables.grant_config_read(function, (*CONFIG_KINDS, ADAPTATION_PARTITION))
        self.tables.grant_config_write(function, [ADAPTATION_PARTITION])
        self.tables.grant_state_query(function, OUTCOME_PARTITIONS, self.data_key)
        # A failed run is not retried by Lambda: the next scheduled run starts from the data as it is then.
        events.Rule(
            self,
            "AdaptSchedule",
            description="llm-router: scheduled adaptation of routes with learn settings",
            schedule=events.Schedule.expression(settings.adapt_schedule),
            targets=[events_targets.LambdaFunction(function, retry_attempts=0)],
        )
        function.configure_async_invoke(retry_attempts=0)
        return function

    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": (self.api.api.url, "The API stage URL (GET health for a check without a key)"),
            "RouterFunctionName": (self.router.function_name, "The router function (logs, concurrency)"),
            "OpenAiBaseUrl": (self.api.base_url, "base_url for OpenAI clients"),
            "ConfigTableName": (self.tables.config_table.table_name, "CONFIG_TABLE_NAME for the llm-router CLI"),
            "StateTableName": (self.tables.state_table.table_name, "STATE_TABLE_NAME for the llm-router CLI"),
            "ProviderKeysSecretArn": (self.provider_keys.secret.secret_arn, "Put provider API keys here (JSON map)"),
            "FallbackQueueUrl": (self.fallback.queue.queue_url, "Requests no model could answer"),
            "DeadLetterQueueUrl": (self.fallback.dead_letter_queue.queue_url, "Requests that failed for good"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "Subscribe here to receive alarms"),
            "DashboardUrl": (self.monitoring.dashboard_url, "CloudWatch dashboard"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _acknowledge_findings(self) -> None:  # noqa: C901 - one acknowledgement per finding, flat by design
        def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
            Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))

        api = self.api
        acknowledge(
            api.api,
            "AwsSolutions-APIG2",
            "Bodies are validated by the router against the OpenAI wire format (pydantic) and refused with "
            "OpenAI-style 400 errors; API Gateway models would duplicate that and answer in another format.",
        )
        acknowledge(
            api.api,
            "AwsSolutions-APIG6",
            "Execution logs go to a log group API Gateway creates outside the stack, without retention, and can "
            "carry request details; JSON access logs record every request and detailed execution metrics are on.",
        )
        acknowledge(
            api.api,
            "AwsSolutions-COG4",
            "Callers are OpenAI clients sending `Authorization: Bearer <key>`; a Lambda REQUEST authorizer checks "
            "the key against its SHA-256 hash in DynamoDB. Cognito user pools do not fit API-key clients.",
        )
        acknowledge(
            api.health_method,
            "AwsSolutions-APIG4",
            "GET /health is open on purpose for load balancers and uptime checks: a MOCK integration answers a "
            "constant, starts no function, reads no data, and has a throttle of its own.",
        )
        acknowledge(
            api.openapi_method,
            "AwsSolutions-APIG4",
            "GET /openapi.json is open on purpose: the API's public description, generated from the request models; "
            "the router answers it without reading any data.",
        )
        if api.preflight_method is not None:
            acknowledge(
                api.preflight_method,
                "AwsSolutions-APIG4",
                "OPTIONS is open on purpose: browsers send CORS preflights without credentials; the router answers "
                "them with headers only, reading no data.",
            )
        if self.api.api.node.try_find_child("CloudWatchRole") is not None:
            acknowledge(
                self.api.api.node.find_child("CloudWatchRole"),
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role uses the AWS-managed policy AWS documents for it; it "
                "only lets API Gateway create and write log groups, and is required for the stage's access logs.",
            )
        if self.firewall is None:
            acknowledge(
                api.stage,
                "AwsSolutions-APIG3",
                "The web ACL is opt-in (context wafEnabled=true) because it has a monthly cost; without it every "
                "call still needs a valid key and stage throttling applies.",
            )
        acknowledge(
            self.provider_keys.secret,
            "AwsSolutions-SMG4",
            "The secret holds API keys issued by external model providers; they can only be rotated at the "
            "provider, after which the operator puts the new value (README: Deploy to AWS).",
        )
        for function in self.functions.functions:
            acknowledge(
                function,
                "AwsSolutions-L1",
                f"The functions run {RUNTIME.name}, the Python minor version the test suite also runs on "
                "(make test-runtime) and the managed Powertools layer is published for; a newer runtime is adopted "
                "together with its tests, not by the latest-runtime rule.",
            )
        kms_variants = {
            "kms:ReEncrypt*": "ReEncryptFrom and ReEncryptTo, which re-wrap data keys",
            "kms:GenerateDataKey*": "GenerateDataKey and its WithoutPlaintext and pair variants",
        }
        for function in (self.router, self.replay):
            for action, variants in kms_variants.items():
                if function.role is not None:
                    acknowledge(
                        function.role,
                        f"AwsSolutions-IAM5[Action::{action}]",
                        f"CDK's grant for the KMS-encrypted State table and queue: {action} covers {variants}, and "
                        "the statement's only resource is the stack's own data key.",
                    )
        wildcard_reasons = []
        if self.settings.tracing_enabled:
            wildcard_reasons.append(
                "X-Ray PutTraceSegments and PutTelemetryRecords do not support resource-level permissions; added "
                "only when tracing is enabled."
            )
        if self.settings.bedrock_marketplace_subscribe:
            wildcard_reasons.append(
                "AWS Marketplace Subscribe, Unsubscribe and ViewSubscriptions have no resource type; Bedrock's "
                "first call to a third-party model subscribes with them, scoped by product id when "
                "bedrockMarketplaceProductIds lists any (context bedrockMarketplaceSubscribe)."
            )
        if wildcard_reasons:
            for function in self.functions.functions:
                if function.role is not None:
                    acknowledge(function.role, "AwsSolutions-IAM5[Resource::*]", " ".join(wildcard_reasons))


def add_checks(app: App) -> None:
    """cdk-nag's AWS Solutions rules on every stack of `app`: an unacknowledged finding fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(app: App) -> RouterStack:
    """The router stack from `app`'s context (cdk.json, `-c key=value`), checked by cdk-nag."""
    settings = StackSettings.from_context(app.node)
    stack = RouterStack(app, settings.stack_name, settings=settings)
    add_checks(app)
    return stack
