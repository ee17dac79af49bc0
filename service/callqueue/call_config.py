"""What a call_config may hold: JSON the agent can be sent (finite numbers), nested at most CALL_CONFIG_MAX_DEPTH.

Checked wherever a call_config arrives (POST /api/calls/queue, every item of a bulk enqueue); its size is bounded
by the request body limit (MAX_BODY_BYTES, MAX_BULK_BODY_BYTES)."""

from __future__ import annotations

import math
from typing import Any

CALL_CONFIG_MAX_DEPTH = 8


def call_config_problems(config: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(location inside call_config, rule broken) for every value the agent could not be sent as JSON."""
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def walk(value: Any, loc: tuple[str | int, ...], depth: int) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            problems.append((loc, "must be a finite number: NaN, Infinity and numbers beyond ±1.8e308 are not JSON"))
        elif isinstance(value, dict | list):
            if depth > CALL_CONFIG_MAX_DEPTH:
                problems.append((loc, f"nests too deep: call_config allows at most {CALL_CONFIG_MAX_DEPTH} levels"))
                return
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                walk(item, (*loc, key), depth + 1)

    for key, value in config.items():
        walk(value, (key,), 1)
    return problems
