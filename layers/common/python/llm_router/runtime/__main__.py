"""`python -m llm_router.runtime`: the Lambda runtime loop (started by the `llm-router-runtime` exec wrapper)."""

import sys

from llm_router.runtime.loop import main

sys.exit(main())
