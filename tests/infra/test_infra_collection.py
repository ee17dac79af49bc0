"""Collecting the tests must not import the provider bindings: every pytest-xdist worker collects every test, and
that import costs tens of seconds of CPU; only the session synthesis (one worker, tests/conftest.py) may pay it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import sys, pytest
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"])
print("provider imported:", "cdktf_cdktf_provider_google" in sys.modules)
sys.exit(code)
"""


def test_collecting_every_test_leaves_the_provider_bindings_unimported() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=280, check=False
    )
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    assert "provider imported: False" in probe.stdout, probe.stdout[-3000:]
