"""Writes the variable tables of docs/configuration.md from callqueue.settings, the one source of truth.

`python -m local.config_doc` rewrites the file; a test fails when the committed file differs from what this makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from callqueue.settings import CLOUD_RUN_OPTIMIZED, PLAIN_VARIABLES, TIMING_VARIABLES

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN, END = "<!-- BEGIN GENERATED: python -m local.config_doc -->", "<!-- END GENERATED -->"


def tables() -> str:
    lines = [
        "### Timing profile",
        "",
        f"`{CLOUD_RUN_OPTIMIZED}=true` selects the Cloud Run column, `false` the local one; unset, the profile follows",
        "the platform (Cloud Run sets `K_SERVICE`). Any variable set on its own overrides its profile value.",
        "",
        "| variable | local profile | Cloud Run profile | allowed | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in TIMING_VARIABLES:
        lines.append(f"| `{v.name}` | {v.local} | {v.cloud_run} | {v.minimum}–{v.maximum} | {v.meaning} |")
    lines += ["", "### Service", "", "| variable | default | meaning |", "| --- | --- | --- |"]
    for p in PLAIN_VARIABLES:
        default = f"`{p.default}`" if p.default is not None else "(none)"
        secret = " **Secret**: from Secret Manager on Cloud Run." if p.secret else ""
        lines.append(f"| `{p.name}` | {default} | {p.meaning}.{secret} |")
    return "\n".join(lines)


def render(current: str) -> str:
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{tables()}\n{END}{tail}"


def main() -> int:
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
