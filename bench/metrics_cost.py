"""Cost of metrics on the HTTP enqueue hot path: the same service with METRICS_ENABLED on (scraped every second,
as a busy collector would) and off, run alternately so drift on a shared machine hits both alike."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading

import httpx
import redis as sync_redis

from bench.common import redis_url, service_process
from bench.enqueue import BODY

CONNECTIONS = 64

PAIRS = 3
SECONDS = 8


def _one(enabled: bool) -> float:
    env = {"REDIS_URL": redis_url(), "REDIS_KEY_PREFIX": "bench-metrics", "DISPATCH_WORKERS": "0",
           "METRICS_ENABLED": "true" if enabled else "false"}  # fmt: skip
    with service_process(env) as base:
        host, port = base.removeprefix("http://").split(":")
        args = [sys.executable, "-m", "bench.loadgen", host, port, "/api/calls/queue", BODY, str(CONNECTIONS)]
        subprocess.run([*args, "2"], check=True, capture_output=True)  # warm-up
        stop = threading.Event()

        def scrape() -> None:
            while not stop.wait(1.0):
                httpx.get(f"{base}/metrics", timeout=5).raise_for_status()

        scraper = threading.Thread(target=scrape, daemon=True)
        if enabled:
            scraper.start()
        out = subprocess.run([*args, str(SECONDS)], check=True, capture_output=True, text=True).stdout
        stop.set()
        if enabled:
            scraper.join()
    return float(json.loads(out)["per_second"])


def run() -> str:
    client = sync_redis.Redis.from_url(redis_url())
    on: list[float] = []
    off: list[float] = []
    for _ in range(PAIRS):
        off.append(_one(False))
        on.append(_one(True))
        client.flushdb()
    cost = (statistics.median(off) - statistics.median(on)) / statistics.median(off) * 100
    verdict = "ok" if cost <= 5 else "over target"
    return "\n".join(
        [
            "## Metrics cost on the enqueue hot path",
            "",
            f"`POST /api/calls/queue` over HTTP as above ({CONNECTIONS} connections, {SECONDS} s per run), {PAIRS} runs"
            " each, alternating METRICS_ENABLED=false / true (true: /metrics scraped every second during the run):",
            "",
            "| metrics | median calls/s | range |",
            "| --- | --- | --- |",
            f"| off | {statistics.median(off):.0f} | {min(off):.0f}–{max(off):.0f} |",
            f"| on | {statistics.median(on):.0f} | {min(on):.0f}–{max(on):.0f} |",
            "",
            f"Cost: **{cost:+.1f} %** of throughput (target ≤ 5 %: {verdict}). Runs vary by more than that on this"
            " shared 2-core machine; the ranges show how much.",
            "",
        ]
    )
