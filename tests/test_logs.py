"""On Cloud Run every log line is a JSON object with a severity; the start-up line states the timing profile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from local.redis_server import free_port


def test_cloud_run_logs_are_json_lines_with_severity(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "K_SERVICE": "callqueue-queue", "PORT": str(port), "REDIS_URL": redis_url,
           "REDIS_KEY_PREFIX": "logtest", "DISPATCH_WORKERS": "0"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "callqueue"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert entries and all({"severity", "message", "logger"} <= set(e) for e in entries)
    banner = next(e for e in entries if e["message"].startswith("CLOUD RUN MODE"))
    assert banner["severity"] == "INFO"
    assert "Delays=20s, Interval=15s, Timeout=30s" in banner["message"]
    assert any("Application startup complete" in e["message"] for e in entries), "uvicorn's lines too"
