"""`make run` as a person meets it: Ctrl-C stops everything in order and quietly; a busy port is said up front."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from local.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
STOP_LINES = [
    "stopped the queue service",
    "stopped the simulators (Plivo, agent, backend)",
    "stopped the throwaway Redis",
]


def start_stack(port: int) -> subprocess.Popen[str]:
    """`python -m local.stack` in a process group of its own, as a terminal runs the foreground job."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AGENT_SERVER_URL")} | {"PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-m", "local.stack", "--env-file", os.devnull],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )


def redis_port(banner: list[str]) -> int:
    [line] = [line for line in banner if line.strip().startswith("Redis ")]
    return int(line.split("redis://127.0.0.1:")[1].split("/")[0])


def wait_until_serving(port: int) -> None:
    deadline = time.monotonic() + 120  # a bound for a hung start, not a timing claim
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/live", timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the service on port {port} did not answer within 120 s")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def test_ctrl_c_stops_the_service_then_the_simulators_then_redis_one_line_each() -> None:
    port = free_port()
    stack = start_stack(port)
    assert stack.stdout is not None
    banner = []
    for line in stack.stdout:  # the banner's last line: everything is up
        banner.append(line)
        if line.strip().endswith("/api/queue/status"):
            break
    assert any("callqueue is running" in line for line in banner), "".join(banner)
    redis = redis_port(banner)
    wait_until_serving(port)  # a person presses Ctrl-C on a service that runs
    os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C does: SIGINT to the whole foreground process group
    rest, _ = stack.communicate(timeout=120)
    assert stack.returncode == 0, rest
    assert "Traceback" not in rest and " ERROR " not in rest, rest
    stops = [line for line in rest.splitlines() if line.startswith("stopped ")]
    assert stops == STOP_LINES, rest
    assert not answers(redis), "the throwaway Redis was stopped"


def test_a_busy_port_is_reported_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = start_stack(port)
        output, _ = stack.communicate(timeout=120)
    assert stack.returncode == 2, output
    assert f"port {port} is already in use" in output
    assert f"make run PORT={port + 1}" in output
    assert "callqueue is running" not in output and "Redis" not in output
    assert "Traceback" not in output
