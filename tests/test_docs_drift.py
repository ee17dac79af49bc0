"""The README and docs/ show commands and output: these tests fail when they no longer match what the code does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def code_blocks(text: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(text)]


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))


def documented_make_commands() -> dict[str, set[str]]:
    """`make X` in inline code, or at the start of a line in a code block (after an optional `$ `)."""
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        names = re.findall(r"`make ([a-z][a-z-]*)", text)
        for block in code_blocks(text):
            names += re.findall(r"^(?:\$ )?make ([a-z][a-z-]*)", block, re.M)
        for name in names:
            found.setdefault(name, set()).add(doc.name)
    return found


def test_every_documented_make_command_is_a_target() -> None:
    documented = documented_make_commands()
    assert {"run", "test", "demo", "synth", "deploy", "logs", "diagnose"} <= set(documented)
    unknown = {name: sorted(docs) for name, docs in documented.items() if name not in make_targets()}
    assert not unknown, f"documented but not in the Makefile: {unknown}"


def test_quick_start_is_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    commands = [line.split("#")[0].strip() for line in code_blocks(quick)[0].splitlines()]
    assert commands == ["make run", "make test"]


def shape(line: str) -> str:
    """A line with what changes from run to run (ids, times, ports, durations) replaced by placeholders."""
    line = re.sub(r"\b[0-9a-f]{32}\b", "<id>", line)
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "<time>", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", line)
    line = re.sub(r"\(duration \d+ s\)", "(duration <n> s)", line)
    # One status change: which ones a call passes through depends on timing (a poll may add one).
    return re.sub(r"^\[demo\] <time>\s+\S+\s+from \S+$", "[demo] <time> <status> from <source>", line)


def collapsed(lines: list[str]) -> list[str]:
    shapes = [shape(line) for line in lines if line.strip()]
    return [s for i, s in enumerate(shapes) if i == 0 or s != shapes[i - 1]]


def test_readme_demo_transcript_is_what_make_demo_prints() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [documented] = [block for block in code_blocks(readme) if block.startswith("$ make demo\n")]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AGENT_SERVER_URL", "PORT", "LOG_LEVEL")}
    demo = subprocess.run(
        [sys.executable, "-m", "local.stack", "--demo", "--env-file", os.devnull],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as the terminal shows it
        text=True,
        timeout=240,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout
    assert collapsed(demo.stdout.splitlines()) == collapsed(documented.splitlines()[1:]), demo.stdout
