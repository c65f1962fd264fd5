"""A Bedrock prompt router through the handler: the model it picked is reported with the answer's metrics."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from llm_router.providers.bedrock import BedrockProvider
from tests.fakes.router import router_with
from tests.helpers import header
from tests.integration.test_provider_bedrock import bedrock_model, reply


def test_a_prompt_router_reports_the_model_it_picked() -> None:
    router_arn = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
    invoked = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    doc = {
        "models": [bedrock_model(router_arn, region=None)],
        "routes": [{"id": "auto", "default": ["sonnet"]}],
        "rules": [],
    }
    with router_with(doc) as r:
        client = boto3.client("bedrock-runtime", region_name="us-east-1")
        regions: list[str | None] = []

        def new_client(region: str | None, timeout: float) -> Any:
            regions.append(region)
            return client

        provider = BedrockProvider(new_client)
        r.build(providers={"bedrock": provider})
        with Stubber(client) as stubber:
            answer = reply([{"text": "ok"}], trace={"promptRouter": {"invokedModelId": invoked}})
            stubber.add_response("converse", answer, {"modelId": router_arn, "messages": ANY})

            response = r.chat("Hello!")

    assert header(response, "x-router-model") == "sonnet"
    assert regions == ["us-east-1"]  # the client's region comes from the router's ARN
    assert [d["answered_by"] for d in r.emitted if "Requests" in d] == [invoked]
