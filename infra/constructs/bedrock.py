"""Which Bedrock models the router may invoke: exactly the ARNs listed in `bedrockModelArns`, nothing else.

A cross-region inference profile is invoked in its source region but served by the foundation model in any of
its destination regions, and IAM checks both: its list must therefore also name the foundation-model ARN in each
destination region (`aws bedrock get-inference-profile --inference-profile-identifier ID` prints them).
Prompt routers likewise need the models they route to.

Third-party models (Anthropic, Meta, Mistral, ...) need no console step any more: Bedrock subscribes the account
through AWS Marketplace on their first call, with the caller's Marketplace rights (Subscribe, Unsubscribe,
ViewSubscriptions), which `grant_marketplace_subscription` gives. Anthropic also asks for a one-time use-case
form per account (or organization), which no IAM permission replaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

# Converse needs InvokeModel; ConverseStream needs InvokeModelWithResponseStream.
INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
# What Bedrock's automatic first-call subscription uses, as its model-access guide lists them. Marketplace
# actions have no resource type: the guide scopes Subscribe and Unsubscribe by `aws-marketplace:ProductId`.
MARKETPLACE_SUBSCRIBE_ACTIONS = ("aws-marketplace:Subscribe", "aws-marketplace:Unsubscribe")
MARKETPLACE_VIEW_ACTION = "aws-marketplace:ViewSubscriptions"
ACCOUNT_PLACEHOLDER = "{account}"
RESOURCE_TYPES = (
    "foundation-model",
    "inference-profile",
    "application-inference-profile",
    "default-prompt-router",
    "prompt-router",
)
_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:bedrock:(?P<region>[a-z0-9-]*):(?P<account>\d{12}|\{account\})?:"
    r"(?P<type>" + "|".join(RESOURCE_TYPES) + r")/(?P<id>[A-Za-z0-9._:/-]+)$"
)
# System-defined cross-region profiles are the model id behind a geography prefix: `us.amazon.nova-micro-v1:0`.
_GEO_PROFILE = re.compile(r"^(?:us|eu|apac|global|jp|au|ca|us-gov)\.(?P<model>.+)$")


@dataclass(frozen=True)
class BedrockModels:
    """The validated `bedrockModelArns`; `grant_invoke` gives a function the right to call exactly those."""

    arns: tuple[str, ...]

    def __post_init__(self) -> None:
        problems = validate_bedrock_arns(self.arns)
        if problems:
            raise ValueError("invalid bedrockModelArns in cdk.json context: " + "; ".join(problems))

    def resource_arns(self) -> list[str]:
        """The ARNs with `{account}` replaced by the deploying account."""
        return [arn.replace(ACCOUNT_PLACEHOLDER, Aws.ACCOUNT_ID) for arn in self.arns]

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant | None:
        """InvokeModel and InvokeModelWithResponseStream on the listed ARNs; None when the list is empty."""
        if not self.arns:
            return None
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(INVOKE_ACTIONS), resource_arns=self.resource_arns()
        )


def grant_marketplace_subscription(grantee: iam.IGrantable, product_ids: Sequence[str] = ()) -> None:
    """The Marketplace rights Bedrock's first call to a third-party model subscribes with.

    With `product_ids`, Subscribe and Unsubscribe hold only for those products; without, for any product the
    first call of a listed model asks for (the role can invoke only `bedrockModelArns`, which is what triggers
    a subscription).
    """
    conditions = {"ForAnyValue:StringEquals": {"aws-marketplace:ProductId": list(product_ids)}} if product_ids else None
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(MARKETPLACE_SUBSCRIBE_ACTIONS),
        resource_arns=["*"],
        conditions=conditions,
    )
    iam.Grant.add_to_principal(grantee=grantee, actions=[MARKETPLACE_VIEW_ACTION], resource_arns=["*"])


def validate_bedrock_arns(arns: Sequence[str]) -> list[str]:
    """What is wrong with `arns` (empty when nothing is)."""
    problems: list[str] = []
    foundation_models: set[str] = set()
    profiles: list[tuple[str, str]] = []
    for arn in arns:
        match = _ARN.match(arn)
        if "*" in arn:
            problems.append(f"{arn}: no wildcards; list each model and region")
        elif match is None:
            problems.append(f"{arn}: not a Bedrock model, inference-profile or prompt-router ARN")
        elif match["type"] == "foundation-model":
            foundation_models.add(match["id"])
        elif match["type"] == "inference-profile":
            geo = _GEO_PROFILE.match(match["id"])
            if geo:
                profiles.append((arn, geo["model"]))
    if len(set(arns)) != len(arns):
        problems.append("an ARN is listed twice")
    for arn, model in profiles:
        if model not in foundation_models:
            problems.append(
                f"{arn}: also list the foundation-model ARN of {model} in each destination region of the profile"
            )
    return problems
