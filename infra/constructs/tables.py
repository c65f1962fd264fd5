"""The Config table (what people edit: rules, models, routes, hashed API keys) and the State table (what the
router writes: request records, usage counters, cache entries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from llm_router.stores.tables import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

# Reads that name their partition key, so the `dynamodb:LeadingKeys` condition can hold them to the allowed
# partitions (a Scan could not be held to any).
PARTITION_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
# Single-item writes, which name their partition key too.
PARTITION_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:DeleteItem")


class Tables(Construct):
    """Both tables: on-demand, point-in-time recovery on. The State table (request bodies, tenants, results) is
    encrypted with the stack's customer-managed key; the Config table with the account's AWS-managed key."""

    def __init__(self, scope: Construct, construct_id: str, *, state_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        keys: dict[str, Any] = {
            "partition_key": dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            "sort_key": dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.AWS_MANAGED,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        }
        # Rules and API keys are edited by hand and exist nowhere else: the table outlives the stack and
        # cannot be deleted by accident.
        self.config_table = dynamodb.Table(
            self,
            "Config",
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            **keys,
        )
        # Request records and counters expire on their own; a redeploy may start from an empty table.
        self.state_table = dynamodb.Table(
            self,
            "State",
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.DESTROY,
            **{**keys, "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": state_key},
        )

    def grant_config_read(
        self,
        grantee: iam.IGrantable,
        partitions: Sequence[str],
        actions: Sequence[str] = PARTITION_READ_ACTIONS,
    ) -> iam.Grant:
        """Read-only access to the Config table, limited to items whose partition key is one of `partitions`."""
        if not partitions or not set(actions) <= set(PARTITION_READ_ACTIONS):
            raise ValueError("grant_config_read: at least one partition, and only GetItem or Query")
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[self.config_table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": sorted(partitions)}},
        )

    def grant_config_write(self, grantee: iam.IGrantable, partitions: Sequence[str]) -> iam.Grant:
        """Single-item writes to the Config table, limited to items whose partition key is one of `partitions`."""
        if not partitions:
            raise ValueError("grant_config_write: at least one partition")
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(PARTITION_WRITE_ACTIONS),
            resource_arns=[self.config_table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": sorted(partitions)}},
        )

    def grant_state_query(self, grantee: iam.IGrantable, partition_pattern: str, key: kms.IKey) -> None:
        """Queries of the State table limited to partitions matching `partition_pattern` (`outcomes#*`), and the
        decryption of what they return."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:Query"],
            resource_arns=[self.state_table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [partition_pattern]}},
        )
        key.grant_decrypt(grantee)
