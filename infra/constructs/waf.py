"""The optional web ACL in front of the API stage (context `wafEnabled`): a per-IP rate limit and AWS's
managed rules for known-bad inputs and addresses."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

# Prompts legitimately contain code, markup, file paths, URLs and long text, which these body rules read as
# attacks: they count (visible in the WAF metrics) instead of blocking. The router validates every body itself.
BODY_RULES_COUNTED = {
    "AWSManagedRulesCommonRuleSet": (
        "SizeRestrictions_BODY",
        "CrossSiteScripting_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY",
    ),
    "AWSManagedRulesKnownBadInputsRuleSet": ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY"),
    "AWSManagedRulesAmazonIpReputationList": (),
}


def _visibility(name: str) -> dict[str, Any]:
    return {"cloudWatchMetricsEnabled": True, "metricName": name, "sampledRequestsEnabled": False}


class ApiFirewall(Construct):
    """A regional web ACL associated with `stage`."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage, rate_limit_per_5_minutes: int):
        super().__init__(scope, construct_id)
        rules: list[dict[str, Any]] = [
            {
                "name": "RateLimitPerIp",
                "priority": 0,
                "action": {"block": {}},
                "statement": {"rateBasedStatement": {"limit": rate_limit_per_5_minutes, "aggregateKeyType": "IP"}},
                "visibilityConfig": _visibility("RateLimitPerIp"),
            }
        ]
        for priority, (group, counted) in enumerate(BODY_RULES_COUNTED.items(), start=1):
            statement: dict[str, Any] = {"vendorName": "AWS", "name": group}
            if counted:
                statement["ruleActionOverrides"] = [{"name": rule, "actionToUse": {"count": {}}} for rule in counted]
            rules.append(
                {
                    "name": group,
                    "priority": priority,
                    "overrideAction": {"none": {}},
                    "statement": {"managedRuleGroupStatement": statement},
                    "visibilityConfig": _visibility(group),
                }
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action={"allow": {}},
            description="llm-router: rate limit and managed rules in front of the API",
            visibility_config=_visibility("LlmRouterApi"),
            rules=rules,
        )
        association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
        # The stage ARN is assembled from names, which carries no dependency on the stage resource itself.
        association.node.add_dependency(stage)
