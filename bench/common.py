"""What every benchmark needs: the Redis it runs against, a service process, and the machine's description."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from local.redis_server import free_port


def rounds_from_env(name: str, default: int) -> int:
    """A count of rounds from the environment variable `name`; a value that is not a whole number ≥ 1 stops the
    benchmark before it starts, saying which variable and why."""
    raw = os.environ.get(name, str(default))
    try:
        rounds = int(raw)
    except ValueError:
        rounds = 0
    if rounds < 1:
        raise SystemExit(f"{name}={raw!r}: must be a whole number of rounds, at least 1 (default {default})")
    return rounds


def switch_from_env(name: str, default: bool = True) -> bool:
    """An on/off switch from the environment variable `name` (1 on, 0 off, unset: `default`); any other value stops
    the benchmark before it starts, saying which variable: a mistyped switch must not run the other way silently."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip() not in ("0", "1"):
        raise SystemExit(f"{name}={raw!r}: must be 1 (on) or 0 (off) (default {int(default)})")
    return raw.strip() == "1"


SLICES = 5  # a side's share of a round is taken in this many turns, in turn with the other sides'


def slice_sizes(jobs: int, slices: int = SLICES) -> list[int]:
    """`jobs` cut into `slices` turns as even as can be (the first ones take the remainder). Turns taken in turn
    (A B A B ...) sample the same moments of a machine whose load changes: a side's figure does not depend on
    whether a burst of other work fell on its run or on the other side's."""
    return [jobs // slices + (1 if k < jobs % slices else 0) for k in range(slices)]


def per_round(values: list[float], digits: int = 0) -> str:
    """One figure per round, in the order the rounds ran: a drift, or one odd round, shows beside the median."""
    return " · ".join(f"{v:,.{digits}f}" for v in values)


def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit("REDIS_URL is not set: run benchmarks with `make bench` (it starts a throwaway Redis)")
    return url


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
    )


def wait_until_answers(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Block until `url` answers HTTP; fail early if the process that should serve it exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer (process {proc.args!r})") from None
            time.sleep(0.1)


@contextmanager
def serving(
    args: list[str], port: int, ready_path: str, env: dict[str, str] | None = None, *, quiet: bool = False
) -> Iterator[tuple[str, int]]:
    """A child process serving HTTP on `port`; yields its base URL and pid once `ready_path` answers (a loaded
    machine may take a while to start it); stopped on exit."""
    output = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(args, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}{ready_path}", proc, timeout_s=60)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def serving_process(
    args: list[str], port: int, ready_path: str, env: dict[str, str] | None = None, *, quiet: bool = False
) -> Iterator[str]:
    """`serving`, for a caller that needs only the base URL."""
    with serving(args, port, ready_path, env, quiet=quiet) as (base, _):
        yield base


@contextmanager
def service_serving(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`python -m callqueue` (one uvicorn worker) with `env` added; yields its base URL and pid."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "LOG_LEVEL": "WARNING", **env}
    with serving([sys.executable, "-m", "callqueue"], port, "/api/health", full_env) as served:
        yield served


@contextmanager
def service_process(env: dict[str, str]) -> Iterator[str]:
    """`python -m callqueue` (one uvicorn worker) with `env` added; yields its base URL."""
    with service_serving(env) as (base, _):
        yield base


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
