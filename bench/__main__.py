"""`make bench`: run every benchmark against a real Redis and write bench/results.md with the machine it ran on."""

from __future__ import annotations

import importlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine

SECTIONS = (
    "bench.enqueue",
    "bench.claim",
    "bench.memory",
    "bench.metrics_cost",
    "bench.pacing",
    "bench.tracking",
    "bench.campaigns",
    "bench.infra_synth",
    "bench.soak",
)
RESULTS = Path(__file__).with_name("results.md")


def main(argv: list[str]) -> int:
    chosen = [s for s in SECTIONS if not argv or s.rsplit(".", 1)[1] in argv]
    parts = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make bench` on: {machine()}.",
        "Figures come from this one run; rerun `make bench` to refresh them.",
        "",
    ]
    for name in chosen:
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        section = importlib.import_module(name).run()
        print(section, flush=True)
        parts.append(section)
        print(f"[bench] {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    RESULTS.write_text("\n".join(parts))
    print(f"[bench] written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
