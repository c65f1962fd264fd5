"""Replay function: SQS fallback queue batches -> llm_router.replay (partial batch failures)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.observability import logger
from llm_router.settings import ReplaySettings
from llm_router.wiring import build_replayer

replayer = build_replayer(ReplaySettings.from_env())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return replayer.handle(event, context)
