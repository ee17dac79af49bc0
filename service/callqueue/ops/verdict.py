"""The result of one check: a verdict, what was found, and the one-line fix; shared by both tools and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


SEVERITY = {Verdict.OK: 0, Verdict.WARN: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    """`summary` says what was found; `remedy` says what to do (empty when nothing is to be done)."""

    name: str
    verdict: Verdict
    summary: str
    remedy: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "remedy": self.remedy,
            "details": self.details,
            "duration_ms": self.duration_ms,
        }


def ok(name: str, summary: str, **details: Any) -> CheckResult:
    return CheckResult(name, Verdict.OK, summary, "", details)


def warn(name: str, summary: str, remedy: str, **details: Any) -> CheckResult:
    return CheckResult(name, Verdict.WARN, summary, remedy, details)


def fail(name: str, summary: str, remedy: str, **details: Any) -> CheckResult:
    return CheckResult(name, Verdict.FAIL, summary, remedy, details)


def worst(results: list[CheckResult]) -> Verdict:
    return max((r.verdict for r in results), key=SEVERITY.__getitem__, default=Verdict.OK)


def exit_code(results: list[CheckResult]) -> int:
    """1 when any check failed; warnings alone still exit 0 so a deploy gate only stops on real faults."""
    return 1 if worst(results) is Verdict.FAIL else 0
