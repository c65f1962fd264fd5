"""Router function: API Gateway proxy events -> llm_router.api (streamed through the runtime loop)."""

import gc
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.api import Response
from llm_router.observability import logger
from llm_router.runtime import AFTER_RESPONSE_HOOK
from llm_router.settings import RouterSettings
from llm_router.wiring import build_router_api

api = build_router_api(RouterSettings.from_env())
_frozen = False


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Response:
    global _frozen
    response = api.handle(event, context)
    if not _frozen:
        # What exists after the first request (modules, clients, the cached config) lives as long as the process:
        # moved out of the collector's generations, it is no longer walked by every full collection.
        gc.freeze()
        _frozen = True
    return response


def _after_response() -> None:
    """Run by the runtime loop once the response is out: outcome records are written before the next invocation."""
    if api.gateway.outcomes is not None:
        api.gateway.outcomes.flush()


setattr(lambda_handler, AFTER_RESPONSE_HOOK, _after_response)
