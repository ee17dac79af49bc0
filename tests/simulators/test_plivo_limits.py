"""Plivo simulator: injected faults, the account's REST rate limit, request statistics and reset."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.simulators.conftest import AUTH_ID, AUTH_TOKEN, Receiver
from tests.simulators.test_plivo_api import call_body


def fault(plivo: str, **rule: Any) -> None:
    httpx.post(f"{plivo}/_sim/faults", json=rule).raise_for_status()


def test_status_faults_answer_n_times_then_clear(plivo: str, rest: httpx.Client, receiver: Receiver) -> None:
    fault(plivo, status=503, count=2, path_contains="/Call/")
    answers = [rest.post("Call/", json=call_body(receiver)).status_code for _ in range(3)]
    assert answers == [503, 503, 201]
    assert len(httpx.get(f"{plivo}/_sim/calls").json()["calls"]) == 1  # the faulted ones placed nothing


def test_429_fault_carries_retry_after(plivo: str, rest: httpx.Client) -> None:
    fault(plivo, status=429, retry_after=3)
    answer = rest.get("Call/")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert set(answer.json()) == {"api_id", "error"}


def test_500_after_processing_places_the_call(plivo: str, rest: httpx.Client, receiver: Receiver) -> None:
    fault(plivo, status=500, process=True, path_contains="/Call/")
    assert rest.post("Call/", json=call_body(receiver)).status_code == 500
    assert len(httpx.get(f"{plivo}/_sim/calls").json()["calls"]) == 1


def test_slow_answer(plivo: str, rest: httpx.Client) -> None:
    fault(plivo, delay=0.3)
    began = time.monotonic()
    assert rest.get("Call/").status_code == 200
    assert time.monotonic() - began >= 0.3


def test_rate_limit_answers_429_past_the_budget(plivo_factory: Callable[..., str]) -> None:
    # A window a loaded machine cannot outlast with 7 local requests; the sleep after it only has to be longer.
    plivo = plivo_factory(rate_limit=5, rate_window=3.0)
    with httpx.Client(base_url=f"{plivo}/v1/Account/{AUTH_ID}/", auth=(AUTH_ID, AUTH_TOKEN)) as rest:
        codes = [rest.get("Call/").status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        time.sleep(3.05)
        assert rest.get("Call/").status_code == 200
    assert httpx.get(f"{plivo}/_sim/stats").json()["by_status"] == {"200": 6, "429": 2}


def test_stats_count_requests_per_call_and_reset_clears(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    rest.get(f"Call/{request_uuid}/", params={"status": "queued"})
    call_uuid = until(lambda: httpx.get(f"{plivo}/_sim/calls/{request_uuid}").json()["call_uuid"])
    rest.get(f"Call/{call_uuid}/", params={"status": "live"})
    rest.get("Call/", params={"to_number": "+15550100001"})
    stats = httpx.get(f"{plivo}/_sim/stats").json()
    assert stats["total"] == 4 and stats["per_call"] == {request_uuid: 3}
    assert stats["per_request_uuid"] == {request_uuid: 2} and stats["per_call_uuid"] == {call_uuid: 1}
    assert stats["by_kind"] == {"create_call": 1, "get_queued": 1, "get_live": 1, "list_calls": 1}
    httpx.post(f"{plivo}/_sim/reset").raise_for_status()
    assert httpx.get(f"{plivo}/_sim/stats").json()["total"] == 0
    assert httpx.get(f"{plivo}/_sim/calls").json()["calls"] == []
