"""The `llm-router-shutdown` Lambda extension's process (standard library only; see extensions/).

Registers with the Extensions API for SHUTDOWN and blocks on the next event until it comes. Its only purpose is
that Lambda then sends the runtime SIGTERM before stopping the environment (lifecycle.py flushes on it).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

API_VERSION = "2020-01-01"


def main(name: str, api: str) -> int:
    base = f"http://{api}/{API_VERSION}/extension"
    register = urllib.request.Request(  # noqa: S310 - the Lambda Runtime API on a local address
        f"{base}/register",
        data=json.dumps({"events": ["SHUTDOWN"]}).encode(),
        headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(register) as response:  # noqa: S310
        extension_id = response.headers["Lambda-Extension-Identifier"]
    while True:
        next_event = urllib.request.Request(  # noqa: S310
            f"{base}/event/next", headers={"Lambda-Extension-Identifier": extension_id}
        )
        with urllib.request.urlopen(next_event) as response:  # noqa: S310
            event = json.load(response)
        if event.get("eventType") == "SHUTDOWN":
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "llm-router-shutdown", os.environ["AWS_LAMBDA_RUNTIME_API"]))
