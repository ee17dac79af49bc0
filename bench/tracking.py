"""Tracking benchmarks against the simulators: REST cost per call, callback-to-status latency, 10,000 calls at once.

1. Happy path: the same calls through our tracker (callbacks on), with every hang-up callback lost (the ring and
   answer ones arrive: the live-call sweep must find the ended calls), and through a baseline that polls like the
   seed (no callbacks; first poll at INITIAL_STATUS_DELAY, then every STATUS_CHECK_INTERVAL). Time is scaled by
   1/5 for all: the seed's 20 s / 15 s become 4 s / 3 s, the simulated calls' durations shrink by the same factor.
   Plivo REST requests per call come from the Plivo simulator's own count (the dial counts 1).
2. Callback latency: signed ring callbacks sent to the service (its own process, 10 at a time); the time from
   sending one until GET /api/calls/{id} shows the new status.
3. Scale (in a fresh process, so its peak resident memory is the tracker's): 10,000 calls in progress tracked
   at once by one scheduler loop, Cloud Run profile. Two loads: callbacks flowing (each call's safety-net check
   spread over the 5-minute quiet period, through the real account budget), and a stress load with no events
   at all (every call polled every 15 s, budget raised). Lateness = when a check started minus when it was due.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
from redis.asyncio import Redis

from bench.common import redis_url, service_process, serving_process
from callqueue.api.app import create_app
from callqueue.clients.agent import AgentClient
from callqueue.clients.auth import IdTokens
from callqueue.clients.plivo import PlivoBudget, PlivoClient
from callqueue.settings import load_settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.checker import Checker
from callqueue.tracking.scheduler import TrackingScheduler
from callqueue.tracking.sources import Sources
from local.redis_server import free_port
from local.simulators.agent import create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.signing import signature_headers
from local.simulators.wiring import simulator_env

AUTH_ID, AUTH_TOKEN = "MABENCH", "bench-token"
SCALE = 0.2  # 1/5 of real time for the happy-path comparison
HAPPY_CALLS = 60
TALK_S, TALK_SPREAD_S = 60, 30  # happy-path talk times: 60 to 90 s (unscaled)
LATENCY_CALLS = 400
LATENCY_IN_FLIGHT = 10
SCALE_CALLS = 10_000
SIM_CALLS = 500  # the tracked calls share these simulated Plivo calls (placing 10,000 is not what is measured)
SCALE_RUN_S = 40.0
STRESS_RUN_S = 30.0
FINAL = {"completed", "busy", "no_answer", "canceled", "failed", "missed", "unknown"}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _env(prefix: str, plivo: str, agent: str, backend: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN),
        "REDIS_URL": redis_url(),
        "REDIS_KEY_PREFIX": prefix,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "AUTH_MODE": "none",
        "LOG_LEVEL": "WARNING",
        "DISPATCH_RATE": "50",
        "MAX_CONCURRENT_CALLS": "1000",
        **extra,
    }


@contextmanager
def _stack(prefix: str, *, time_scale: float, **env: str) -> Iterator[tuple[str, str, httpx.Client]]:
    """Plivo, agent and backend simulators plus the service, in this process; yields (plivo, service, client)."""
    with ExitStack() as exits:
        plivo = exits.enter_context(
            running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=50, time_scale=time_scale, rate_limit=10_000))
        )
        agent = exits.enter_context(running(create_agent_app(plivo, AUTH_ID, AUTH_TOKEN)))
        backend = exits.enter_context(running(create_backend_app()))
        port = free_port()
        settings = load_settings(_env(prefix, plivo, agent, backend, port, **env))
        service = exits.enter_context(running(create_app(settings), port=port))
        client = exits.enter_context(httpx.Client(timeout=10))
        yield plivo, service, client


def _happy_path(prefix: str, callbacks: dict[str, str], **env: str) -> dict[str, float]:
    """Runs HAPPY_CALLS answered calls to completion; REST requests per call and outcome delay after hang-up."""
    with _stack(prefix, time_scale=SCALE, **env) as (plivo, service, client):
        ids = []
        for n in range(HAPPY_CALLS):
            # Talk times spread evenly over TALK_SPREAD_S, so hang-ups fall across a whole live-call sweep period.
            talk = TALK_S + TALK_SPREAD_S * n / HAPPY_CALLS
            script = {"ring_after": 3, "answer_after": 5, "talk_for": talk, "cdr_delay": 3, "callbacks": callbacks}
            phone = f"+1415555{n:04d}"
            client.post(f"{plivo}/_sim/scripts", json={"to": phone, "script": script}).raise_for_status()
            body = {"phone_number": phone, "campaign_id": "bench", "call_config": {"flow_name": "b"}}
            ids.append(client.post(f"{service}/api/calls/queue", json=body).json()["call_id"])
        deadline = time.monotonic() + 180
        records: dict[str, dict[str, Any]] = {}
        while len(records) < len(ids) and time.monotonic() < deadline:
            for call_id in ids:
                if call_id not in records:
                    record = client.get(f"{service}/api/calls/{call_id}").json()
                    if record["status"] in FINAL:
                        records[call_id] = record
            time.sleep(0.2)
        stats = client.get(f"{plivo}/_sim/stats").json()
        sim_calls = {c["request_uuid"]: c for c in client.get(f"{plivo}/_sim/calls").json()["calls"]}
    delays = []
    for record in records.values():
        sim = sim_calls.get(record["request_uuid"] or "")
        if sim and sim["end_time"] and record["status"] == "completed":
            final_at = _iso_epoch(record["history"][-1]["at"])
            delays.append(max(0.0, (final_at - sim["end_time"]) / SCALE))  # in unscaled seconds
    completed = sum(1 for r in records.values() if r["status"] == "completed")
    return {
        "calls": len(ids),
        "completed": completed,
        "requests_per_call": stats["total"] / max(1, len(ids)),
        "dials": stats["by_kind"].get("create_call", 0),
        "outcome_delay_p50": _pct(delays, 0.5),
        "outcome_delay_p99": _pct(delays, 0.99),
    }


def _iso_epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _latency(service: str, public: str, call_ids: list[str]) -> list[float]:
    """Send one signed ring callback per call (LATENCY_IN_FLIGHT at a time); seconds until GET shows `ringing`."""
    semaphore = asyncio.Semaphore(LATENCY_IN_FLIGHT)
    results: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(n: int, call_id: str) -> None:
            path = f"/api/webhooks/plivo/ring?{urlencode({'call_id': call_id})}"
            params = {"CallUUID": f"cu-{n}", "RequestUUID": f"ru-{n}", "CallStatus": "ringing", "To": "14155550100"}
            headers = signature_headers(AUTH_TOKEN, "POST", public + path, params)
            async with semaphore:
                started = time.perf_counter()
                answer = await client.post(service + path, data=params, headers=headers)
                answer.raise_for_status()
                while (await client.get(f"{service}/api/calls/{call_id}")).json()["status"] != "ringing":  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                results.append(time.perf_counter() - started)

        await asyncio.gather(*(one(n, c) for n, c in enumerate(call_ids)))
    return results


def _callback_latency(prefix: str) -> list[float]:
    """The service alone in its own process (`python -m callqueue`), as deployed; the calls stay queued."""
    public = "https://queue-bench.example.run.app"
    env = _env(prefix, "http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9", 9, DISPATCH_WORKERS="0")
    env = {k: v for k, v in env.items() if k != "PORT"} | {"PUBLIC_BASE_URL": public}
    with service_process(env) as service, httpx.Client(timeout=10) as client:
        ids = []
        for n in range(LATENCY_CALLS):
            body = {"phone_number": f"+1415555{n:04d}", "campaign_id": "bench", "call_config": {"flow_name": "b"}}
            ids.append(client.post(f"{service}/api/calls/queue", json=body).json()["call_id"])
        return asyncio.run(_latency(service, public, ids))


@contextmanager
def _plivo_process(rate_limit: int) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "local.simulators.plivo", "--port", str(port), "--auth-id", AUTH_ID]
    args += ["--auth-token", AUTH_TOKEN, "--cps", "100000", "--rate-limit", str(rate_limit)]
    with serving_process(args, port, "/_sim/ping", quiet=True) as base:
        yield base


async def _place_sim_calls(http: httpx.AsyncClient, plivo: str, count: int) -> list[tuple[str, str]]:
    """`count` long calls at the simulator (answered at once, talking for 10 hours): (request_uuid, call_uuid)."""
    script = {"ring_after": 0, "answer_after": 0, "talk_for": 36000, "callbacks": {"ring": "drop"}}
    (await http.post(f"{plivo}/_sim/scripts", json={"script": script})).raise_for_status()
    gate = asyncio.Semaphore(20)

    async def dial(n: int) -> str:
        # answer_url on a closed port: the simulator's answer fetch fails at once instead of loading it.
        body = {"from": "+15550000000", "to": f"+1415{n:07d}", "answer_url": "http://127.0.0.1:9/answer"}
        async with gate:
            for attempt in range(5):
                try:
                    answer = await http.post(
                        f"{plivo}/v1/Account/{AUTH_ID}/Call/", json=body, auth=(AUTH_ID, AUTH_TOKEN)
                    )
                    return str(answer.json()["request_uuid"])
                except httpx.HTTPError:
                    await asyncio.sleep(0.2 * (attempt + 1))
        raise RuntimeError("the Plivo simulator refused to place bench calls")

    request_uuids = await asyncio.gather(*(dial(n) for n in range(count)))
    await asyncio.sleep(1.0)
    sim_calls = (await http.get(f"{plivo}/_sim/calls", timeout=60)).json()["calls"]
    call_uuid = {c["request_uuid"]: c["call_uuid"] for c in sim_calls}
    return [(r, call_uuid[r]) for r in request_uuids]


async def _track(
    prefix: str, plivo: str, http: httpx.AsyncClient, sim_calls: list[tuple[str, str]], mode: str, run_s: float
) -> dict[str, float]:
    """SCALE_CALLS calls in progress, tracked by one scheduler for `run_s`; lateness of every check it ran.

    mode "events": callbacks are flowing, so each call's next check is its safety net, spread over one quiet
    period (20 intervals), through the real account budget (300 requests / 5 s).
    mode "polling": no events at all, every call polled every interval, budget raised (a stress figure).
    """
    extra = {"CLOUD_RUN_OPTIMIZED": "true"}
    if mode == "polling":
        extra["PLIVO_API_LIMIT"] = "100000"
    settings = load_settings(_env(prefix, plivo, "http://127.0.0.1:9", "http://127.0.0.1:9", 9, **extra))
    redis = Redis.from_url(redis_url(), decode_responses=True)
    store = CallStore(redis, prefix)
    cadence = Cadence(settings.timing)
    spread_ms = cadence.quiet_ms(0) if mode == "events" else cadence.poll_ms
    gate = asyncio.Semaphore(50)

    async def register(n: int) -> str:
        request_uuid, call_uuid = sim_calls[n % len(sim_calls)]
        async with gate:
            enq = await store.enqueue(f"+1415{n:07d}", "bench", {"flow_name": "b"})
            fields = {"request_uuid": request_uuid, "call_uuid": call_uuid}
            await store.transition(enq.call_id, CallStatus.IN_PROGRESS, "bench", {}, fields)
            return enq.call_id

    ids = await asyncio.gather(*(register(n) for n in range(SCALE_CALLS)))
    base = store.now_ms() + 2000  # schedules start once every call is registered
    async with redis.pipeline(transaction=False) as pipe:
        for n, call_id in enumerate(ids):
            due = base + int(spread_ms * n / SCALE_CALLS)
            if mode == "events":
                pipe.hset(store.keys.call(call_id), mapping={"trk_last_event_ms": due - cadence.quiet_ms(0)})
            pipe.zadd(store.keys.tracking, {call_id: due})
        await pipe.execute()
    budget = PlivoBudget(redis, store.keys.plivo_budget, settings.plivo_api_limit, settings.plivo_api_window)
    plivo_client = PlivoClient(
        base_url=plivo,
        auth_id=AUTH_ID,
        auth_token=AUTH_TOKEN,
        http=http,
        budget=budget,
        timeout_s=settings.timing.request_timeout,
        max_retries=settings.timing.max_status_retries,
    )
    agent = AgentClient("http://127.0.0.1:9", http, IdTokens(http, enabled=False), 5)
    checker = Checker(store, Sources(plivo_client, agent), plivo_client, cadence)
    scheduler = TrackingScheduler(store, checker, settings.tracker_concurrency, cadence.check_lease_ms)
    scheduler.measure = True
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(run_s)
    stop.set()
    await task
    tracked = await redis.zcard(store.keys.tracking)
    await redis.aclose()
    lateness = [ms / 1000 for ms in scheduler.lateness_ms]
    return {
        "tracked_at_end": tracked,
        "checks": len(lateness),
        "checks_per_s": len(lateness) / run_s,
        "lateness_p50": _pct(lateness, 0.5),
        "lateness_p99": _pct(lateness, 0.99),
        "lateness_max": max(lateness) if lateness else float("nan"),
        "spread_s": spread_ms / 1000,
        "interval_s": settings.timing.status_check_interval,
        "concurrency": settings.tracker_concurrency,
    }


async def _scale(prefix: str, plivo: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        sim_calls = await _place_sim_calls(http, plivo, SIM_CALLS)
        events = await _track(f"{prefix}e", plivo, http, sim_calls, "events", SCALE_RUN_S)
        polling = await _track(f"{prefix}p", plivo, http, sim_calls, "polling", STRESS_RUN_S)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events": events, "polling": polling, "rss_mib": rss}


def _ms(figures: dict[str, float], name: str) -> str:
    return f"{figures[name] * 1000:.0f} ms"


def _scale_in_subprocess(prefix: str) -> dict[str, Any]:
    """The scale run in a fresh process, so its resident memory is the tracker's alone."""
    with _plivo_process(rate_limit=1_000_000) as plivo:  # our own budget limits the first load
        out = subprocess.run(
            [sys.executable, "-m", "bench.tracking", "scale", prefix, plivo],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def run() -> str:
    stamp = f"b{os.getpid()}{int(time.time()) % 100000}"
    scaled = {"INITIAL_STATUS_DELAY": "4", "STATUS_CHECK_INTERVAL": "3", "REQUEST_TIMEOUT": "6"}
    scaled |= {"MAX_STATUS_RETRIES": "3", "MAX_CONSECUTIVE_ERRORS": "6", "AUTO_MISS_TIMEOUT": "12"}
    ours = _happy_path(f"{stamp}o", {}, **scaled)
    lost = _happy_path(f"{stamp}h", {"hangup": "drop"}, **scaled)
    baseline = _happy_path(f"{stamp}b", {"ring": "drop", "hangup": "drop"}, **scaled)
    latency = _callback_latency(f"{stamp}l")
    scale = _scale_in_subprocess(f"{stamp}s")
    ev, po = scale["events"], scale["polling"]
    ms = [x * 1000 for x in latency]
    lines = [
        "## Call tracking",
        "",
        "Simulators over real HTTP, one Redis. Happy path: answered calls (ring 3 s, answer 5 s, talk "
        f"{TALK_S}–{TALK_S + TALK_SPREAD_S} s",
        f"spread evenly, in unscaled time), {HAPPY_CALLS} calls per run, time scaled by 1/5 for all runs",
        "(seed 20 s / 15 s → 4 s / 3 s).",
        '"Hang-up lost": ring and answer callbacks arrive, every hang-up callback is dropped (found by the live-call',
        "sweep, tracking/live_sweep.py). The baseline is the same service with every callback lost, i.e. polling",
        "like the seed.",
        "",
        "| happy path | ours (callbacks) | ours, hang-up callback lost | seed-like polling | target |",
        "| --- | --- | --- | --- | --- |",
        f"| Plivo REST requests per call (dial = 1) | {ours['requests_per_call']:.2f} | "
        f"{lost['requests_per_call']:.2f} | {baseline['requests_per_call']:.2f} | ≤ 1.1 with callbacks |",
        f"| calls completed | {ours['completed']}/{ours['calls']} | {lost['completed']}/{lost['calls']} | "
        f"{baseline['completed']}/{baseline['calls']} | all |",
        f"| outcome known after hang-up, p50 / p99 (unscaled s) | {ours['outcome_delay_p50']:.1f} / "
        f"{ours['outcome_delay_p99']:.1f} | {lost['outcome_delay_p50']:.1f} / {lost['outcome_delay_p99']:.1f} | "
        f"{baseline['outcome_delay_p50']:.1f} / {baseline['outcome_delay_p99']:.1f} | p99 ≤ 60 s, hang-up lost |",
        "",
        f"Callback → new status on GET /api/calls/{{id}} (`python -m callqueue` in its own process; {len(ms)} signed "
        f"ring callbacks, {LATENCY_IN_FLIGHT} in flight; from sending the callback until a GET shows `ringing`): "
        f"p50 {_pct(ms, 0.5):.1f} ms, p99 {_pct(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (target p99 < 250 ms).",
        "",
        f"Scale: {SCALE_CALLS:,} calls in progress tracked at once by one scheduler loop in one process "
        f"(Cloud Run profile, TRACKER_CONCURRENCY={ev['concurrency']}); each check a real live lookup at the Plivo "
        f"simulator (the calls share {SIM_CALLS} simulated calls). Peak resident memory of that process: "
        f"{scale['rss_mib']:.0f} MiB (target < 512 MiB).",
        "",
        "| load | checks run | checks/s | lateness p50 / p99 / max | target |",
        "| --- | --- | --- | --- | --- |",
        f"| callbacks flowing: safety-net checks spread over {ev['spread_s']:.0f} s, real budget 300/5 s, "
        f"{SCALE_RUN_S:.0f} s | {ev['checks']:,} | {ev['checks_per_s']:.0f} | {_ms(ev, 'lateness_p50')} / "
        f"{_ms(ev, 'lateness_p99')} / {_ms(ev, 'lateness_max')} | p99 < 1 s |",
        f"| stress, no events: every call polled every {po['interval_s']} s (needs {SCALE_CALLS // po['interval_s']:,}"
        f" checks/s), budget raised, {STRESS_RUN_S:.0f} s | {po['checks']:,} | {po['checks_per_s']:.0f} | "
        f"{_ms(po, 'lateness_p50')} / {_ms(po, 'lateness_p99')} / {_ms(po, 'lateness_max')} | |",
        "",
        "The stress row is bounded by this machine (the simulator serving every lookup shares its cores) and, in",
        "production, by Plivo's account limit: 60 lookups/s cannot poll 10,000 calls every 15 s, whatever the",
        "tracker does. That is why status comes from callbacks and polls are safety nets.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["scale"]:
        print(json.dumps(asyncio.run(_scale(sys.argv[2], sys.argv[3]))))
    else:
        print(run())
