"""The fallback queue: requests that no model could answer wait here for the replay worker, and land in the
dead-letter queue after `maxReceiveCount` tries (the monitoring alarm watches it).

A message names a request and nothing else (the body and tenant are in the State table), both queues are
encrypted with the stack's customer-managed key, and the queue policy lets only the router's role send.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# The longest SQS allows: an operator has two weeks to inspect and re-drive what failed for good.
DEAD_LETTER_RETENTION = Duration.days(14)
QUEUE_RETENTION = Duration.days(4)
# Six times a one-minute replay function; see the note on `visibility_timeout` below.
DEFAULT_VISIBILITY_TIMEOUT = Duration.minutes(6)


class FallbackQueue(Construct):
    """The queue and its dead-letter queue: SSE with `encryption_key`, TLS required, redrive after
    `max_receive_count` receives."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_receive_count: int,
        encryption_key: kms.IKey,
        visibility_timeout: Duration = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        secure: dict[str, Any] = {
            "encryption": sqs.QueueEncryption.KMS,
            "encryption_master_key": encryption_key,
            "enforce_ssl": True,
        }
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            retention_period=DEAD_LETTER_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
            **secure,
        )
        # `visibility_timeout` must stay at least six times the consumer's function timeout, or a message
        # still being replayed becomes visible again and is answered twice.
        self.queue = sqs.Queue(
            self,
            "Queue",
            retention_period=QUEUE_RETENTION,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            removal_policy=RemovalPolicy.DESTROY,
            **secure,
        )

    def grant_send(self, role: iam.IRole, operator_role_arns: tuple[str, ...] = ()) -> iam.Grant:
        """What the router needs to queue a request it could not answer; no other principal may send (the queue
        policy denies everyone else, whatever their IAM policies allow), except the operator roles named for
        re-driving the dead-letter queue."""
        senders: list[str] = [role.role_arn, *operator_role_arns]
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheRouterSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": senders if operator_role_arns else role.role_arn}},
            )
        )
        return self.queue.grant_send_messages(role)
