"""Run a command with REDIS_URL set: the configured one, or a throwaway server started for the command.

Usage: python -m local.with_redis pytest -q
"""

from __future__ import annotations

import os
import subprocess
import sys

from local.redis_server import ThrowawayRedis


def this_python(argv: list[str]) -> list[str]:
    """`pytest …` and `python …` run with this interpreter (the project's .venv), not whatever is first on PATH."""
    if argv[0] == "pytest":
        return [sys.executable, "-m", "pytest", *argv[1:]]
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m local.with_redis COMMAND [ARGS...]", file=sys.stderr)
        return 2
    argv = this_python(argv)
    if os.environ.get("REDIS_URL"):
        return subprocess.call(argv)
    with ThrowawayRedis() as redis:
        print(f"[with_redis] started a throwaway Redis at {redis.url}", file=sys.stderr)
        return subprocess.call(argv, env={**os.environ, "REDIS_URL": redis.url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
