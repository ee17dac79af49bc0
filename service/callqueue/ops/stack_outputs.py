"""Point the tools at a deployed environment: its URLs from `terraform output -json` of the environment's stack.

The infra stacks export queue_url, agent_url and backend_url (infra/stacks.py); `make diagnose ENV=…` writes
them to a file and passes it with --stack-outputs, so an operator checks the deployment from their own machine.
"""

from __future__ import annotations

import json
from pathlib import Path

# stack output → the variable the service reads (QUEUE_URL is read by the tools only)
OUTPUT_VARIABLES = {
    "agent_url": "AGENT_SERVER_URL",
    "backend_url": "BACKEND_URL",
    "queue_url": "QUEUE_URL",
}


class StackOutputsError(ValueError):
    pass


def env_from_outputs(path: str) -> dict[str, str]:
    """Environment overrides from a `terraform output -json` file ('-' is not supported: pass a file)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise StackOutputsError(f"cannot read stack outputs from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise StackOutputsError(f"{path} is not the JSON object `terraform output -json` prints")
    env: dict[str, str] = {}
    for output, variable in OUTPUT_VARIABLES.items():
        entry = data.get(output)
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, str) and value:
            env[variable] = value
    if not env:
        raise StackOutputsError(f"{path} has none of {sorted(OUTPUT_VARIABLES)}: was the stack deployed?")
    if "QUEUE_URL" in env:
        env["PUBLIC_BASE_URL"] = env["QUEUE_URL"]
    return env
