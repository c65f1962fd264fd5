"""The dashboard and the alarms, which notify one SNS topic (and an email address, when one is configured).

The router's metrics are EMF documents in the `LlmRouter` namespace with the dimension sets `[service]`,
`[Model]`, `[Route]` and `[Provider]` kept apart: totals read `[service]`, breakdowns search the others.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StackSettings
from llm_router.metrics import Dimension, Metric
from llm_router.settings import METRICS_NAMESPACE, SERVICE_NAME

_ALARM_ARN = ArnFormat.COLON_RESOURCE_NAME
HOUR = Duration.hours(1)
FIVE_MINUTES = Duration.minutes(5)
# Below this many requests in five minutes, one failed call would read as a high error rate.
MIN_REQUESTS_FOR_ERROR_RATE = 10
ESTIMATE_NOTE = (
    "### llm-router\n"
    "**Cost metrics are estimates**: token counts times the prices in the model catalog, as the router computed "
    "them. They are not the AWS bill (see Billing and Cost Explorer for that). *Saved* is what the route's "
    "baseline model would have cost minus what was spent."
)


def router_metric(
    name: Metric, *, statistic: str = "Sum", period: Duration = HOUR, label: str | None = None
) -> cw.Metric:
    """A router metric over all requests (the `[service]` dimension set)."""
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name.value,
        dimensions_map={Dimension.SERVICE.value: SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=label,
    )


def metric_by(dimension: Dimension, name: Metric, *, period: Duration = HOUR) -> cw.MathExpression:
    """One line per value of `dimension` (Model, Route, Provider...), found by a search."""
    search = f'{{{METRICS_NAMESPACE},{dimension.value}}} MetricName="{name.value}"'
    return cw.MathExpression(
        expression=f"SEARCH('{search}', 'Sum', {int(period.to_seconds())})",
        label="",
        period=period,
    )


class Monitoring(Construct):
    """Alarm topic, alarms and dashboard; queue widgets and the dead-letter alarm exist when queues are given."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        stage: apigw.Stage,
        functions: Sequence[lambda_.Function],
        queue: sqs.IQueue | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Alarm notifications are encrypted at rest with a key CloudWatch may use (the AWS-managed SNS key
        # does not let CloudWatch publish).
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="llm-router: encrypts alarm notifications",
            enable_key_rotation=True,
            pending_window=Duration.days(7),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="llm-router alarms", master_key=self.topic_key, enforce_ssl=True
        )
        # `enforce_ssl` gives the topic a policy of its own, which replaces SNS's default one: CloudWatch may
        # publish only when the policy says so, and only for alarms of this account.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": Stack.of(self).format_arn(
                            service="cloudwatch", resource="alarm", resource_name="*", arn_format=_ALARM_ARN
                        )
                    },
                },
            )
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []

        self._alarm(
            "CostPerHour",
            router_metric(Metric.COST_USD),
            threshold=settings.cost_per_hour_alarm_usd,
            description=f"Estimated model spend above {settings.cost_per_hour_alarm_usd} USD in one hour",
        )
        requests = stage.metric_count(period=FIVE_MINUTES, statistic="Sum")
        server_errors = stage.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        error_rate = cw.MathExpression(
            expression=f"IF(requests >= {MIN_REQUESTS_FOR_ERROR_RATE}, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": server_errors},
            label="5xx rate (%)",
            period=FIVE_MINUTES,
        )
        self._alarm(
            "ServerErrorRate",
            error_rate,
            threshold=settings.error_5xx_rate_alarm_percent,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"More than {settings.error_5xx_rate_alarm_percent}% of API responses are 5xx",
        )
        # A request that could not even be queued was lost to the caller (it was told so): always worth a look.
        self._alarm(
            "QueueWriteFailed",
            router_metric(Metric.QUEUE_WRITE_FAILED, period=FIVE_MINUTES),
            threshold=0,
            description="The router could not write a request to the fallback queue",
        )
        # A config item that fails validation keeps its last valid version in force, but an edit did not land.
        self._alarm(
            "InvalidConfigItems",
            router_metric(Metric.INVALID_CONFIG_ITEMS, period=FIVE_MINUTES),
            threshold=0,
            description="A rule, model, route or tenant item in the Config table is invalid (see the router logs)",
        )
        # Throttled functions mean the account's Lambda concurrency (or a reserved concurrency) is exhausted:
        # callers see 5xx for the router and the authorizer, and replays wait.
        throttles = {
            f"throttles{i}": fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum") for i, fn in enumerate(functions)
        }
        if throttles:
            self._alarm(
                "FunctionThrottles",
                cw.MathExpression(
                    expression=f"SUM([{', '.join(throttles)}])",
                    using_metrics=throttles,
                    label="Throttles",
                    period=FIVE_MINUTES,
                ),
                threshold=0,
                description="Lambda throttled a router function (concurrency quota or reserved concurrency reached)",
            )
        if dead_letter_queue is not None:
            self._alarm(
                "DeadLetterQueueNotEmpty",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=0,
                description="Requests failed for good and wait in the dead-letter queue (llm-router dlq list)",
            )

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self._widgets(stage, functions, queue, dead_letter_queue)

    def _alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"llm-router: {description}",
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)

    def _widgets(
        self,
        stage: apigw.Stage,
        functions: Sequence[lambda_.Function],
        queue: sqs.IQueue | None,
        dead_letter_queue: sqs.IQueue | None,
    ) -> None:
        def graph(title: str, left: Sequence[cw.IMetric], *, width: int = 8) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(left), width=width, height=6)

        self.dashboard.add_widgets(cw.TextWidget(markdown=ESTIMATE_NOTE, width=24, height=3))
        self.dashboard.add_widgets(
            graph("Requests per hour", [router_metric(Metric.REQUESTS)]),
            graph(
                "Cost and savings per hour (USD, estimated)",
                [
                    router_metric(Metric.COST_USD, label="Cost"),
                    router_metric(Metric.BASELINE_COST_USD, label="Baseline cost"),
                    router_metric(Metric.SAVED_USD, label="Saved"),
                ],
            ),
            graph("Tokens per hour", [router_metric(Metric.INPUT_TOKENS), router_metric(Metric.OUTPUT_TOKENS)]),
        )
        self.dashboard.add_widgets(
            graph("Cost by model per hour (USD, estimated)", [metric_by(Dimension.MODEL, Metric.COST_USD)], width=12),
            graph("Cost by route per hour (USD, estimated)", [metric_by(Dimension.ROUTE, Metric.COST_USD)], width=12),
        )
        self.dashboard.add_widgets(
            graph(
                "Latency (ms)",
                [
                    router_metric(Metric.LATENCY_MS, statistic="p50", label="p50", period=FIVE_MINUTES),
                    router_metric(Metric.LATENCY_MS, statistic="p99", label="p99", period=FIVE_MINUTES),
                ],
            ),
            graph(
                "Router overhead (ms)",
                [
                    router_metric(Metric.ROUTER_OVERHEAD_MS, statistic="p50", label="p50", period=FIVE_MINUTES),
                    router_metric(Metric.ROUTER_OVERHEAD_MS, statistic="p99", label="p99", period=FIVE_MINUTES),
                ],
            ),
            graph("Requests by model per hour", [metric_by(Dimension.MODEL, Metric.REQUESTS)]),
        )
        self.dashboard.add_widgets(
            graph(
                "Fallbacks and errors",
                [
                    router_metric(Metric.FALLBACKS, period=FIVE_MINUTES),
                    router_metric(Metric.PROVIDER_ERRORS, period=FIVE_MINUTES),
                    router_metric(Metric.INVALID_CONFIG_ITEMS, period=FIVE_MINUTES),
                ],
            ),
            graph(
                "Provider errors by provider",
                [metric_by(Dimension.PROVIDER, Metric.PROVIDER_ERRORS, period=FIVE_MINUTES)],
            ),
            graph(
                "API responses",
                [
                    stage.metric_count(statistic="Sum", label="Requests", period=FIVE_MINUTES),
                    stage.metric_client_error(statistic="Sum", label="4xx", period=FIVE_MINUTES),
                    stage.metric_server_error(statistic="Sum", label="5xx", period=FIVE_MINUTES),
                ],
            ),
        )
        lambda_metrics: list[cw.IMetric] = []
        for function in functions:
            name = function.node.id
            lambda_metrics += [
                function.metric_errors(label=f"{name} errors", period=FIVE_MINUTES),
                function.metric_throttles(label=f"{name} throttles", period=FIVE_MINUTES),
            ]
        queue_metrics: list[cw.IMetric] = [
            router_metric(Metric.QUEUED, period=FIVE_MINUTES),
            router_metric(Metric.QUEUE_WRITE_FAILED, period=FIVE_MINUTES),
        ]
        if queue is not None:
            queue_metrics.append(
                queue.metric_approximate_number_of_messages_visible(label="Fallback queue depth", period=FIVE_MINUTES)
            )
        if dead_letter_queue is not None:
            queue_metrics.append(
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    label="Dead-letter depth", period=FIVE_MINUTES
                )
            )
        self.dashboard.add_widgets(
            graph("Response cache hits by route per hour", [metric_by(Dimension.ROUTE, Metric.CACHE_HITS)], width=24),
        )
        # Routes with `learn`: shadow evaluations judged, skipped (budget, residency, ...) and failed, what they
        # cost, and outcome records that could not be written.
        self.dashboard.add_widgets(
            graph(
                "Shadow evaluation and outcome records per hour",
                [
                    router_metric(Metric.SHADOW_EVALUATIONS, label="Judged"),
                    router_metric(Metric.SHADOW_SKIPPED, label="Skipped"),
                    router_metric(Metric.SHADOW_FAILED, label="Failed"),
                    router_metric(Metric.OUTCOME_WRITE_FAILED, label="Outcome writes failed"),
                ],
                width=12,
            ),
            graph(
                "Shadow evaluation cost by route per hour (USD)",
                [metric_by(Dimension.ROUTE, Metric.SHADOW_COST_USD)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            graph("Function errors and throttles", lambda_metrics, width=12),
            graph("Queue depths", queue_metrics, width=12),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=3),
        )

    @property
    def dashboard_url(self) -> str:
        return (
            f"https://console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )
