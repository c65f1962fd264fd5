"""Authorizer function: API Gateway REQUEST authorizer events -> llm_router.authorizer."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.authorizer import authorizer_response
from llm_router.observability import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorizer_response(event)
