"""Soak: N calls through 3 `python -m callqueue` processes while one of them is SIGKILLed again and again and the
agent's answers are made ambiguous (late after dialling, 500 after dialling, connection cut, timeout before
dialling). Is every person dialled exactly once, does every call reach Plivo's outcome, is every result delivered?

`python -m local.with_redis python -m bench soak` (part of `make bench`). SOAK_CALLS (default 1000), SOAK_KILLS
(default 100), SOAK_AGENT (`stock`, pipecat's example, default; or `conformant`). Every process is a real child
process: the simulators of Plivo, the agent and the backend, and the service instances.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from typing import Any

import httpx
import redis

from bench.common import redis_url, serving_process, wait_until_answers
from local.redis_server import free_port
from local.simulators.wiring import simulator_env

AUTH_ID, AUTH_TOKEN = "MASOAK", "soak-token"
PROCESSES = 3
FINAL = {"completed", "busy", "no_answer", "canceled", "failed", "missed", "unknown"}
PLIVO_TO_OURS = {"completed": "completed", "busy": "busy", "no-answer": "no_answer"}
AMBIGUOUS: tuple[dict[str, Any], ...] = (
    {"delay": 3},  # dials, answers after REQUEST_TIMEOUT
    {"status": 500, "process": True},  # dials, answers 500
    {"drop_after_dial": True},  # dials, cuts the connection
    {"status": 504, "delay": 3, "process": False},  # times out, never dials
)
SETTLE_TIMEOUT_S = 900


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Instance:
    """One service process that can be SIGKILLed and started again on the same port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PORT": str(self.port), "LOG_LEVEL": "ERROR"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callqueue"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _sim(module: str, *extra: str) -> tuple[list[str], int]:
    port = free_port()
    return [sys.executable, "-m", f"local.simulators.{module}", "--port", str(port), *extra], port


def _enqueue(instances: list[Instance], http: httpx.Client, number: str) -> str:
    """POST /api/calls/queue to any live instance, retried with the same Idempotency-Key until one answers."""
    body = {"phone_number": number, "campaign_id": "soak", "call_config": {"flow_name": "soak"}}
    while True:
        instance = random.choice(instances)
        try:
            answer = http.post(f"{instance.url}/api/calls/queue", json=body, headers={"Idempotency-Key": number})
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if answer.status_code in (200, 202):
            call_id: str = answer.json()["call_id"]
            return call_id
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            raise RuntimeError(f"enqueue of {number} refused: {answer.status_code} {answer.text[:200]}")
        time.sleep(0.1)


def soak(calls: int, kills: int, agent_mode: str) -> dict[str, Any]:
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    rng = random.Random(9)
    numbers = [f"+1415{5550000 + n:07d}" for n in range(calls)]
    scripted = {n: rng.choices(["completed", "busy", "no_answer"], [8, 1, 1])[0] for n in numbers}
    with ExitStack() as exits:
        plivo_args, plivo_port = _sim("plivo", "--auth-id", AUTH_ID, "--auth-token", AUTH_TOKEN, "--cps", "200",
                                      "--time-scale", "1", "--rate-limit", "300")  # fmt: skip
        plivo = exits.enter_context(serving_process(plivo_args, plivo_port, "/_sim/ping", quiet=True))
        agent_args, agent_port = _sim("agent", "--plivo-url", plivo, "--auth-id", AUTH_ID, "--auth-token", AUTH_TOKEN,
                                      "--mode", agent_mode)  # fmt: skip
        agent = exits.enter_context(serving_process(agent_args, agent_port, "/_sim/ping", quiet=True))
        backend_args, backend_port = _sim("backend")
        backend = exits.enter_context(serving_process(backend_args, backend_port, "/_sim/ping", quiet=True))
        http = exits.enter_context(httpx.Client(timeout=10))
        for number, outcome in scripted.items():
            script = {"outcome": outcome, "answer_after": 1, "talk_for": 3, "cdr_delay": 1}
            http.post(f"{plivo}/_sim/scripts", json={"to": number, "script": script}).raise_for_status()
        env = {
            **simulator_env(plivo=plivo, agent=agent, backend=backend, auth_id=AUTH_ID, auth_token=AUTH_TOKEN),
            "REDIS_URL": redis_url(), "REDIS_KEY_PREFIX": prefix, "AUTH_MODE": "none",
            "PUBLIC_BASE_URL": "http://127.0.0.1:9",  # no callbacks: Plivo polling alone (the stock agent's world)
            "REQUEST_TIMEOUT": "2", "INITIAL_STATUS_DELAY": "1", "STATUS_CHECK_INTERVAL": "1",
            "DISPATCH_RATE": "20", "MAX_CONCURRENT_CALLS": "1000", "DIAL_PROOF_SETTLE": "2",
        }  # fmt: skip
        instances = [Instance(env) for _ in range(PROCESSES)]
        for instance in instances:
            exits.callback(instance.stop)
        for instance in instances:
            assert instance.proc is not None
            wait_until_answers(f"{instance.url}/api/health", instance.proc, 90)
        done_killing = threading.Event()
        killed: list[float] = []

        def killer() -> None:
            pace = float(os.environ.get("SOAK_KILL_INTERVAL", "0.5"))
            while len(killed) < kills:
                time.sleep(pace)
                victim = rng.choice(instances)
                victim.kill()
                killed.append(time.monotonic())
                victim.start()
            done_killing.set()

        started = time.monotonic()
        ids: dict[str, str] = {}
        ambiguous = 0
        threading.Thread(target=killer, daemon=True).start()
        for n, number in enumerate(numbers):
            if n % 10 == 5:  # one start in ten gets an ambiguous answer
                http.post(f"{agent}/_sim/faults", json=rng.choice(AMBIGUOUS)).raise_for_status()
                ambiguous += 1
            ids[_enqueue(instances, http, number)] = number
            time.sleep(1 / 20)  # at the dispatch rate, so the kills land across the whole run
        done_killing.wait()
        r = redis.Redis.from_url(redis_url(), decode_responses=True)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            pipe = r.pipeline()
            for call_id in ids:
                pipe.hmget(f"{prefix}:call:{call_id}", ["status", "created_at", "updated_at"])
            rows = dict(zip(ids, pipe.execute(), strict=True))
            statuses = {c: row[0] or "missing" for c, row in rows.items()}
            if all(s in FINAL for s in statuses.values()):
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        time.sleep(5)  # results still in the outbox get their chance
        plivo_calls = http.get(f"{plivo}/_sim/calls").json()["calls"]
        results = http.get(f"{backend}/_sim/results").json()
        stats = http.get(f"{plivo}/_sim/stats").json()
    dials = Counter("+" + c["to"] for c in plivo_calls)
    plivo_outcome = {"+" + c["to"]: PLIVO_TO_OURS.get(c["status"], c["status"]) for c in plivo_calls}
    final = {c: s for c, s in statuses.items() if s in FINAL}
    wrong = [c for c, s in final.items() if s != plivo_outcome.get(ids[c])]
    times = [(int(row[2]) - int(row[1])) / 1000 for c, row in rows.items() if row[0] in FINAL]
    delivered = Counter(str(k).rsplit(":", 1)[1] for k in results["results"])
    return {
        "calls": calls, "kills": len(killed), "ambiguous": ambiguous, "agent": agent_mode,
        "dialled_people": len(dials), "dials": sum(dials.values()), "max_dials": max(dials.values(), default=0),
        "twice": sum(1 for v in dials.values() if v > 1), "never_dialled": calls - len(dials),
        "lost": calls - len(final), "not_final": Counter(s for s in statuses.values() if s not in FINAL),
        "outcomes": Counter(final.values()), "wrong_outcome": len(wrong), "delivered": delivered,
        "duplicates": len(results["duplicates"]), "p50": _pct(times, 0.5), "p99": _pct(times, 0.99),
        "elapsed": elapsed, "rest_per_call": stats.get("requests_per_call"),
        "rest_by_kind": stats.get("by_kind"), "rest_by_status": stats.get("by_status"),
    }  # fmt: skip


def run() -> str:
    calls = int(os.environ.get("SOAK_CALLS", "1000"))
    kills = int(os.environ.get("SOAK_KILLS", "100"))
    agent_mode = os.environ.get("SOAK_AGENT", "stock")
    f = soak(calls, kills, agent_mode)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(f["outcomes"].items()))
    delivered = ", ".join(f"{k} {v}" for k, v in sorted(f["delivered"].items()))
    per_person = f["dials"] / f["dialled_people"] if f["dialled_people"] else float("nan")
    return "\n".join(
        [
            "## Soak: SIGKILLs and ambiguous agent answers (issue 9)",
            "",
            f"`python -m local.with_redis python -m bench soak`: {f['calls']} calls through {PROCESSES}"
            f" `python -m callqueue` processes, {f['kills']} SIGKILLs of one of them (restarted at once),"
            f" {f['ambiguous']} ambiguous agent answers mixed in (late after dialling, 500 after dialling, connection"
            f" cut, timeout before dialling); agent: {f['agent']}; no callbacks (Plivo polling alone);"
            f" DISPATCH_RATE 20, REQUEST_TIMEOUT 2 s, DIAL_PROOF_SETTLE 2 s, Plivo simulator in real time (answer"
            f" after 1 s, talk 3 s; 10 % busy, 10 % no answer).",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| dials per dialled person | {per_person:.3f} (max {f['max_dials']}; dialled twice: {f['twice']}) |",
            f"| people never dialled | {f['never_dialled']} |",
            f"| calls lost (no outcome within {SETTLE_TIMEOUT_S} s) | {f['lost']} {dict(f['not_final']) or ''} |",
            f"| outcomes | {outcomes} |",
            f"| outcome differs from Plivo's | {f['wrong_outcome']} |",
            f"| results delivered per outcome | {delivered} (duplicates received: {f['duplicates']}) |",
            f"| time to outcome (enqueue → final status) p50 / p99 | {f['p50']:.1f} s / {f['p99']:.1f} s |",
            f"| Plivo REST requests per call | {f['rest_per_call']} (by kind: {f['rest_by_kind']}; by answer:"
            f" {f['rest_by_status']}) |",
            f"| run time | {f['elapsed']:.0f} s |",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
