"""Adapt function (opt-in, on a schedule): re-fits every learning route from its outcomes -> llm_router.adapting."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.adapting import AdaptFailedError
from llm_router.observability import logger
from llm_router.settings import AdaptSettings
from llm_router.wiring import build_adapter

adapter = build_adapter(AdaptSettings.from_env())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runs, failed = adapter.run_all(dry_run=bool(event.get("dry_run", False)))
    summary = {"routes": [run.report() for run in runs], "failed": failed}
    if failed:
        # A failed invocation shows in the function's Errors metric; the routes that did adapt keep their result.
        raise AdaptFailedError(failed)
    return summary
