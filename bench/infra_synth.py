"""Synthesis of every environment in one fresh process: the provider import beside everything after it."""

from __future__ import annotations

import subprocess
import sys


def run() -> str:
    result = subprocess.run([sys.executable, "-m", "infra.bench_synth"], capture_output=True, text=True, check=False)
    table = result.stdout.strip() or f"(failed: {result.stderr.strip()[-500:]})"
    return "\n".join(["## Infrastructure synthesis", "", "`python -m infra.bench_synth`, one process:", "", table, ""])
