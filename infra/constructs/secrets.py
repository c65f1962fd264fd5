"""The one secret that holds external providers' API keys (a JSON map: key name -> key)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


class ProviderKeys(Construct):
    """An empty JSON map at first; operators fill it with `aws secretsmanager put-secret-value` (see the README)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # "{}" is not a secret: it is the empty map the router reads as "no provider keys yet". CloudFormation
        # writes it at creation and never again while it stays unchanged here, so values put later survive
        # every redeploy.
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="llm-router: API keys of external model providers, a JSON map of key name -> key",
            secret_string_value=SecretValue.unsafe_plain_text("{}"),
            # Deleted with the stack after the recovery window, so a mistaken destroy can be undone.
            removal_policy=RemovalPolicy.DESTROY,
        )
