"""Router function: API Gateway proxy events -> llm_router.api (streamed through the runtime loop)."""

import gc
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_router.api import Response
from llm_router.observability import logger
from llm_router.runtime import AFTER_RESPONSE_HOOK
from llm_router.runtime.deferred import Deferred
from llm_router.settings import Env, RouterSettings
from llm_router.wiring import build_router_api

# Response-cache writes wait until the response is out when the streaming runtime loop serves this function: it
# calls the handler's `after_response` after posting each response. Under the managed runtime they are written
# before the response.
deferred = Deferred()
api = build_router_api(
    RouterSettings.from_env(), defer=deferred.defer if os.environ.get(Env.STREAMING_RESPONSES) == "true" else None
)
_frozen = False


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Response:
    global _frozen
    # Nothing, under the runtime loop; what a caller that does not call `after_response` left behind, otherwise.
    deferred.run_pending()
    response = api.handle(event, context)
    if not _frozen:
        # What exists after the first request (modules, clients, the cached config) lives as long as the process:
        # moved out of the collector's generations, it is no longer walked by every full collection.
        gc.freeze()
        _frozen = True
    return response


def _after_response() -> None:
    """Run by the runtime loop once the response is out, before the next invocation: the deferred response-cache
    writes, then the outcome records."""
    deferred.run_pending()
    if api.gateway.outcomes is not None:
        api.gateway.outcomes.flush()


setattr(lambda_handler, AFTER_RESPONSE_HOOK, _after_response)
