"""`make campaign-demo`, whose output the README shows, runs to the end and says what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_campaign_demo_runs_a_campaign_from_bulk_enqueue_to_its_status() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "service"), str(ROOT)])}
    env.pop("REDIS_URL", None)  # the demo brings its own throwaway Redis and simulators
    done = subprocess.run(
        [sys.executable, "-m", "local.campaign_demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "accepted 4, rejected 0" in out
    assert "attempt 2  scheduled due" in out and "(retry)" in out
    assert "scheduled due" in out and "(calling_hours)" in out
    assert "suppressed — number is on the suppression list: replied STOP" in out
    assert out.count("final=True") == 4 and out.count("final=False") == 1
    assert '"by_status": {"completed": 3, "suppressed": 1}' in out
