"""`make campaign-demo`: one campaign from bulk enqueue to its status, with a redial and calling hours.

Runs against a throwaway Redis and the simulators only (never real services), with the service clock set to 20:30
in New York and then moved forward, so the redial's wait and the night pass in seconds:
- Los Angeles numbers (17:30 there) are inside 09:00–20:00 and dialled at once; the first is busy, redialled after
  its 10-minute wait, and answered;
- a New York number waits for 09:00 New York; a suppressed number ends `suppressed` without a dial.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from callqueue.api.app import create_app
from callqueue.clock import OffsetClock
from callqueue.settings import load_settings
from local.redis_server import free_port
from local.simulators.server import running
from local.stack import local_environment

NY = ZoneInfo("America/New_York")
CAMPAIGN = "spring-renewals"
LA_BUSY_FIRST, LA_ANSWERS, NY_NUMBER, OPTED_OUT = "+14155550101", "+14155550102", "+12125550103", "+14155550104"
SETTINGS = {
    "calling_hours": {"start": "09:00", "end": "20:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat"]},
    "retry": {"max_attempts": 3, "on": ["busy", "no_answer"], "waits_s": [600, 3600]},
}
CSV = (
    "phone_number,key,first_name\n"
    f"{LA_BUSY_FIRST},crm-101,Ada\n{LA_ANSWERS},crm-102,Grace\n{NY_NUMBER},crm-103,Edsger\n{OPTED_OUT},crm-104,Alan\n"
)


def say(line: str) -> None:
    print(f"[campaign-demo] {line}", flush=True)


def wait_until(http: httpx.Client, call_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = http.get(f"/api/calls/{call_id}").json()
        if record["status"] in statuses or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def show(record: dict[str, Any]) -> None:
    waiting = f" due {record['due_at']} ({record['waiting_for']})" if record["status"] == "scheduled" else ""
    reason = f" — {record['reason']}" if record["status"] in ("suppressed", "failed") else ""
    say(f"  {record['phone_number']}  attempt {record['attempt']}  {record['status']}{waiting}{reason}")


def main() -> int:
    logging.getLogger("callqueue").setLevel(logging.ERROR)  # the demo prints what happens itself
    clock = OffsetClock()
    evening = datetime.now(NY).replace(hour=20, minute=30, second=0, microsecond=0)
    while evening.weekday() >= 5:  # a weekday evening, so the next opening is the next morning
        evening += timedelta(days=1)
    clock.set(int(evening.timestamp() * 1000))
    port = free_port()
    log: list[str] = []
    with local_environment({"PORT": str(port)}, log) as env:
        plivo = env["PLIVO_API_BASE_URL"]
        settings = load_settings({**env, "DISPATCH_RATE": "5", "LOG_LEVEL": "WARNING"})
        with running(create_app(settings, clock=clock), port=port) as base, httpx.Client(base_url=base) as http:
            say(f"service clock set to {evening:%a %Y-%m-%d %H:%M} New York (17:30 in Los Angeles)")
            scripts = {LA_BUSY_FIRST: [{"outcome": "busy"}, {"talk_for": 2}], LA_ANSWERS: {"talk_for": 2}}
            for number, script in {**scripts, NY_NUMBER: {"talk_for": 2}}.items():
                httpx.post(f"{plivo}/_sim/scripts", json={"to": number, "script": script}).raise_for_status()
            http.put(f"/api/campaigns/{CAMPAIGN}", json=SETTINGS).raise_for_status()
            say(f"PUT /api/campaigns/{CAMPAIGN} {json.dumps(SETTINGS)}")
            http.post("/api/suppressions", json={"numbers": [OPTED_OUT], "reason": "replied STOP"}).raise_for_status()
            say(f"POST /api/suppressions {OPTED_OUT} (replied STOP)")
            answer = http.post(
                f"/api/campaigns/{CAMPAIGN}/calls", content=CSV.encode(), params={"flow_name": "renewal"},
                headers={"content-type": "text/csv"},
            ).json()  # fmt: skip
            say(f"POST /api/campaigns/{CAMPAIGN}/calls (CSV, 4 rows): accepted {answer['accepted']},"
                f" rejected {answer['rejected']}")  # fmt: skip
            ids = {item["call_id"]: item["status"] for item in answer["items"]}
            for call_id, status in ids.items():
                say(f"  {call_id}  {status}")
            busy, answered, morning, opted = list(ids)
            say("after the first dials:")
            wait_until(http, busy, {"scheduled"})
            show(_wait_planned(http, busy))
            show(wait_until(http, answered, {"completed"}))
            show(http.get(f"/api/calls/{morning}").json())
            show(wait_until(http, opted, {"suppressed"}))
            clock.advance(10 * 60_000)
            say("service clock +10 min: the redial is due")
            record = wait_until(http, busy, {"completed"})
            for attempt in record["dial_attempts"]:
                path = " → ".join(h["status"] for h in attempt["history"])
                say(f"  {attempt['attempt_id']}  attempt {attempt['attempt']}: {path}")
            opening = (evening + timedelta(days=1)).replace(hour=9, minute=0)
            clock.set(int(opening.timestamp() * 1000))
            say(f"service clock {opening:%a %H:%M} New York: calling hours open")
            show(wait_until(http, morning, {"completed"}))
            results = _wait_results(env["BACKEND_URL"], 5)
            say("results at the backend (Idempotency-Key → outcome, final):")
            for key, entry in sorted(results.items(), key=lambda kv: kv[1]["received_at"]):
                say(f"  {key:<38} {entry['body']['outcome']:<10} final={entry['body']['final']}")
            status = http.get(f"/api/campaigns/{CAMPAIGN}").json()
            say(f"GET /api/campaigns/{CAMPAIGN}:")
            for name in ("state", "calls", "attempts", "progress", "pace", "breaker"):
                say(f"  {name}: {json.dumps(status[name])}")
    return 0


def _wait_planned(http: httpx.Client, call_id: str, timeout: float = 30) -> dict[str, Any]:
    """The redial once the planner has set when it is due."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = http.get(f"/api/calls/{call_id}").json()
        if record["due_at"] or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def _wait_results(backend: str, count: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        results: dict[str, Any] = httpx.get(f"{backend}/_sim/results").json()["results"]
        if len(results) >= count or time.monotonic() > deadline:
            return results
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
