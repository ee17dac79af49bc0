"""Exponential backoff with full jitter, capped: spreads retries of many workers instead of synchronising them."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float = 0.5, cap_s: float = 30.0) -> float:
    """Delay before retry number `attempt` (1-based)."""
    return random.uniform(0, min(cap_s, base_s * 2 ** (attempt - 1)))
