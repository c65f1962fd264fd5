"""Work a process must finish before it stops: on SIGTERM (Lambda) and at interpreter exit.

Lambda stops an idle execution environment without warning, unless an extension is registered: then the
runtime receives SIGTERM and has a few hundred milliseconds to finish (Python 3.12 and later). The layer ships
such an extension (`extensions/llm-router-shutdown`, which only waits for the SHUTDOWN event), so the usage
buffer (stores/usage_buffer.py) is written before the environment goes away.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from llm_router.observability import logger

_hooks: list[Callable[[], Any]] = []
_lock = threading.Lock()
_installed = False


def on_shutdown(hook: Callable[[], Any]) -> None:
    """Run `hook` once when the process is told to stop (SIGTERM) or exits."""
    with _lock:
        _hooks.append(hook)
    _install()


def run_hooks() -> None:
    """Run (and forget) every registered hook; a failing hook does not stop the others."""
    with _lock:
        hooks = list(_hooks)
        _hooks.clear()
    for hook in hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - shutting down: log and go on with the next hook
            logger.exception("shutdown_hook_failed")


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(run_hooks)
    # Signal handlers can only be set from the main thread; elsewhere (a server thread) exit hooks still run.
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            run_hooks()
            if callable(previous):
                previous(signum, frame)
            else:
                sys.exit(0)

        signal.signal(signal.SIGTERM, on_sigterm)
