"""Render check results for people (aligned lines, the fix under each problem) or for machines (JSON)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from callqueue.ops.verdict import CheckResult, Verdict, exit_code

TAGS = {Verdict.OK: "[ ok ]", Verdict.WARN: "[warn]", Verdict.FAIL: "[FAIL]"}


def _detail_lines(details: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for key, value in details.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.extend(_detail_lines(value, indent + "  "))
        elif isinstance(value, list):
            shown = ", ".join(str(v) for v in value[:8]) + (f", … ({len(value)} in all)" if len(value) > 8 else "")
            lines.append(f"{indent}{key}: {shown}")
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


def render_text(title: str, results: Sequence[CheckResult], verbose: bool = True) -> str:
    width = max((len(r.name) for r in results), default=10)
    lines = [title]
    for r in results:
        lines.append(f"{TAGS[r.verdict]} {r.name.ljust(width)}  {r.summary}")
        if r.remedy:
            lines.append(f"       {' ' * width}  fix: {r.remedy}")
        if verbose and r.details:
            lines.extend(_detail_lines(r.details, " " * (width + 9)))
    counts = Counter(r.verdict for r in results)
    code = exit_code(list(results))
    lines.append(f"{counts[Verdict.OK]} ok, {counts[Verdict.WARN]} warn, {counts[Verdict.FAIL]} fail (exit {code})")
    return "\n".join(lines)


def render_json(tool: str, results: Sequence[CheckResult], extra: dict[str, Any] | None = None) -> str:
    counts = Counter(r.verdict.value for r in results)
    body = {
        "tool": tool,
        "exit_code": exit_code(list(results)),
        "counts": {v.value: counts.get(v.value, 0) for v in Verdict},
        **(extra or {}),
        "checks": [r.as_json() for r in results],
    }
    return json.dumps(body, indent=2, default=str)
