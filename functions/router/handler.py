"""Router function: API Gateway proxy events -> llm_router.api (streamed through the runtime loop)."""

import gc
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.api import Response
from llm_router.observability import logger
from llm_router.runtime.deferred import AFTER_RESPONSE
from llm_router.settings import Env, RouterSettings
from llm_router.wiring import build_router_api

# Response-cache writes wait until the response is out when the streaming runtime loop serves this function: it
# runs them after posting each response. Under the managed runtime they are written before the response.
api = build_router_api(
    RouterSettings.from_env(), defer=AFTER_RESPONSE.defer if os.environ.get(Env.STREAMING_RESPONSES) == "true" else None
)
_frozen = False


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Response:
    global _frozen
    # Nothing, under the runtime loop; what a caller that does not drain the queue left behind, otherwise.
    AFTER_RESPONSE.run_pending()
    response = api.handle(event, context)
    if not _frozen:
        # What exists after the first request (modules, clients, the cached config) lives as long as the process:
        # moved out of the collector's generations, it is no longer walked by every full collection.
        gc.freeze()
        _frozen = True
    return response
