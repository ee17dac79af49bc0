"""Run checks concurrently, each under a hard deadline, turning any exception or hang into a failed verdict.

This is what makes the tools safe against a hung peer or a bug in one check: the operator always gets a report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from callqueue.ops.verdict import CheckResult, fail

CheckFn = Callable[[], Awaitable[CheckResult | list[CheckResult]]]
# Beyond its own per-request timeout a check gets this long to wrap up before it is cut off.
GRACE_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
    hint: str = "see the service logs (make logs)"


def summarize(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def run_one(check: Check, deadline_s: float) -> list[CheckResult]:
    started = time.perf_counter()
    try:
        outcome = await asyncio.wait_for(check.run(), timeout=deadline_s)
    except TimeoutError:
        outcome = fail(check.name, f"no verdict within {deadline_s:g} s: the peer or Redis hangs", check.hint)
    except Exception as exc:  # the catch-all that keeps one broken check from hiding the others
        outcome = fail(check.name, f"the check itself failed: {summarize(exc)}", check.hint)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    results = outcome if isinstance(outcome, list) else [outcome]
    return [r if r.duration_ms is not None else replace(r, duration_ms=elapsed) for r in results]


async def run_all(checks: Sequence[Check], timeout_s: float) -> list[CheckResult]:
    """All checks at once; results in the order the checks were given."""
    groups = await asyncio.gather(*(run_one(c, timeout_s + GRACE_S) for c in checks))
    return [r for group in groups for r in group]


async def run_in_turn(checks: Sequence[Check], deadline_s: float) -> list[CheckResult]:
    """One check after another, for measurements that concurrent traffic would skew (latency percentiles)."""
    return [r for c in checks for r in await run_one(c, deadline_s)]
