"""An instance killed mid-call (SIGKILL, no shutdown) loses nothing: another instance's tracker finishes its calls.

Instance A (a `python -m callqueue` subprocess) dispatches the calls and would receive Plivo's callbacks; it is
killed while the calls wait in Plivo's queue, before they ring. Instance B (in-process, no dispatch workers, same
Redis) brings every call to its outcome by polling — A's callbacks now go nowhere — and delivers every result
once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from local.redis_server import free_port
from tests.tracking.conftest import StackFactory, new_number, path, wait_for

LONG = {"queue_for": 2, "ring_after": 0.5, "answer_after": 0.5, "talk_for": 2, "cdr_delay": 0.3}


def test_killed_instance_calls_are_finished_by_another(stack: StackFactory, subprocess_env: dict[str, str]) -> None:
    s = stack(DISPATCH_WORKERS="0")
    port = free_port()
    env = {**subprocess_env, **s.env, "PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    env["DISPATCH_WORKERS"] = "4"
    a = subprocess.Popen(
        [sys.executable, "-m", "callqueue"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _healthy(port), 15, "instance A to serve")
        numbers = [new_number() for _ in range(4)]
        for number in numbers:
            s.script(number, LONG)
        ids = [s.queue(n) for n in numbers]
        wait_for(lambda: all(s.call(c)["status"] in ("dispatched", "initiated") for c in ids), 10, "dispatch by A")
        os.kill(a.pid, signal.SIGKILL)
        a.wait(5)
        at_kill = {c: s.call(c)["status"] for c in ids}
        assert not set(at_kill.values()) & {"completed", "failed", "unknown"}, at_kill
        records = s.wait_all(ids, timeout=20)
        for record in records.values():
            assert record["status"] == "completed", record
            assert "failed" not in path(record) and "unknown" not in path(record)
            assert record["history"][-1]["source"].startswith(("plivo-api", "agent")), record["history"][-1]
        expected = {f"{c}:completed" for c in ids}
        wait_for(lambda: expected <= set(s.backend_results()["results"]), 10, "results")
        assert s.backend_results()["duplicates"] == []
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(5)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
