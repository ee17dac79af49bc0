"""`make bench`: run every benchmark against a real Redis and write bench/results.md with the machine it ran on.

`python -m bench enqueue claim` runs only the sections named and replaces just those sections in results.md, each
stamped with when, where and on which commit it ran: the other sections keep the figures of the runs they name.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import redis as sync_redis

from bench.common import machine, redis_url

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
HEADING = "## "


def where() -> str:
    """The machine, the Redis server, the commit and the load: what a figure depends on, printed beside it."""
    client = sync_redis.Redis.from_url(redis_url())
    try:
        info: dict[str, object] = client.info("server")  # type: ignore[assignment]  # sync client: a dict
        version = info.get("redis_version", "unknown")
    finally:
        client.close()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{machine()}, redis-server {version}, commit `{commit}`, load average {load} at the start"


def splice(existing: str, new_sections: list[str], stamp: str) -> str:
    """`existing` with each of `new_sections` in place of the section of the same `## ` heading (appended if
    there is none), stamped: the file's other sections are left as their own runs wrote them."""
    head, blocks = _blocks(existing)
    for section in new_sections:
        heading = section.split("\n", 1)[0]
        if not heading.startswith(HEADING):
            raise ValueError(f"a benchmark section must start with a '{HEADING}' heading, got {heading!r}")
        rest = section.split("\n", 1)[1] if "\n" in section else ""
        stamped = f"{heading}\n\n_Rerun on its own: {stamp}._\n{rest}"
        titles = [b.split("\n", 1)[0] for b in blocks]
        if heading in titles:
            blocks[titles.index(heading)] = stamped
        else:
            blocks.append(stamped)
    return "\n".join([head, *(b.rstrip("\n") + "\n" for b in blocks)])


def _blocks(text: str) -> tuple[str, list[str]]:
    head: list[str] = []
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(HEADING):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            head.append(line)
    return "\n".join(head), ["\n".join(b) for b in blocks]


def main(argv: list[str]) -> int:
    unknown = [a for a in argv if f"bench.{a}" not in SECTIONS]
    if unknown:
        names = " ".join(s.rsplit(".", 1)[1] for s in SECTIONS)
        print(f"unknown benchmark section(s): {' '.join(unknown)}; choose from: {names}", file=sys.stderr)
        return 2
    chosen = [s for s in SECTIONS if not argv or s.rsplit(".", 1)[1] in argv]
    started_at, context = datetime.now(UTC), where()
    parts = []
    for name in chosen:
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        section = importlib.import_module(name).run()
        print(section, flush=True)
        parts.append(section)
        print(f"[bench] {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if argv and RESULTS.exists():
        RESULTS.write_text(splice(RESULTS.read_text(), parts, f"{started_at:%Y-%m-%d %H:%M} UTC on {context}"))
    else:
        header = [
            "# Benchmark results",
            "",
            f"Run {started_at:%Y-%m-%d %H:%M} UTC with `make bench` on: {context}.",
            "Figures come from this one run, except sections stamped as rerun on their own;"
            " `make bench` refreshes all.",
            "",
        ]
        RESULTS.write_text("\n".join(header + parts))
    print(f"[bench] written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
