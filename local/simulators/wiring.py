"""The settings that point the queue service at the three simulators, in one place.

`make run`, the tests and the benchmarks all wire the service this way; each adds its own Redis and timings.
"""

from __future__ import annotations


def simulator_env(*, plivo: str, agent: str, backend: str, auth_id: str, auth_token: str) -> dict[str, str]:
    return {
        "AGENT_SERVER_URL": agent,
        "BACKEND_URL": backend,
        "PLIVO_API_BASE_URL": plivo,
        "PLIVO_AUTH_ID": auth_id,
        "PLIVO_AUTH_TOKEN": auth_token,
    }
