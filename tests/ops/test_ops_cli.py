"""The tools as an operator runs them: real subprocesses, human-readable output, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.ops.conftest import PATIENT


def _run(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_diagnose_subprocess_healthy_and_broken(env: dict[str, str], closed_port_url: str) -> None:
    healthy = _run("callqueue.ops.diagnose", env, "--timeout", PATIENT)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "[ ok ] redis " in healthy.stdout
    assert "[ ok ] region " in healthy.stdout
    assert healthy.stdout.rstrip().endswith("0 fail (exit 0)")
    no_metadata = closed_port_url.removeprefix("redis://").removesuffix("/0")
    broken_env = env | {"REDIS_URL": closed_port_url, "K_SERVICE": "q", "GCE_METADATA_HOST": no_metadata}
    broken = _run("callqueue.ops.diagnose", broken_env, "--timeout", PATIENT)
    assert broken.returncode == 1
    assert "[FAIL] redis " in broken.stdout
    assert "[ ok ] profile         profile cloud_run on Cloud Run" in broken.stdout  # K_SERVICE alone picks it
    assert "Traceback" not in broken.stdout + broken.stderr


def test_diagnose_subprocess_bad_settings_has_no_traceback(env: dict[str, str]) -> None:
    result = _run("callqueue.ops.diagnose", env | {"PLIVO_AUTH_TOKEN": ""}, "--timeout", PATIENT)
    assert result.returncode == 1
    assert "[FAIL] settings" in result.stdout
    assert "PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN must be set together" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_connectivity_subprocess(env: dict[str, str], peers: dict[str, str]) -> None:
    healthy = _run("callqueue.ops.connectivity", env, "-n", "3", "--timeout", PATIENT)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "[ ok ] agent " in healthy.stdout and "latency: p50" in healthy.stdout
    broken = _run("callqueue.ops.connectivity", env | {"AGENT_SERVER_URL": peers["forbidden"]}, "-n", "1")
    assert broken.returncode == 1
    assert "[FAIL] agent " in broken.stdout and "roles/run.invoker" in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr
