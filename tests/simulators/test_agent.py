"""Agent simulator: pipecat's /start over the Plivo simulator, idempotency, status endpoint, faults, Redis events."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
import redis

from local.simulators.agent import create_agent_app
from local.simulators.server import running
from tests.simulators.conftest import AUTH_ID, AUTH_TOKEN, Receiver
from tests.simulators.test_plivo_api import script

PHONE = "+15550200001"


@pytest.fixture(scope="session")
def _shared_agent(_shared_plivo: str) -> Iterator[str]:
    with running(create_agent_app(_shared_plivo, AUTH_ID, AUTH_TOKEN)) as base_url:
        yield base_url


@pytest.fixture
def agent(_shared_agent: str, plivo: str) -> str:
    httpx.post(f"{_shared_agent}/_sim/reset").raise_for_status()
    return _shared_agent


def start_body(receiver: Receiver, call_id: str = "call-1", phone: str = PHONE) -> dict[str, Any]:
    return {
        "dialout_settings": {"phone_number": phone},
        "call_id": call_id,
        "campaign_id": "camp-1",
        "call_config": {"voice": "x"},
        "callbacks": {
            "ring_url": f"{receiver.base_url}/ring?call_id={call_id}",
            "hangup_url": f"{receiver.base_url}/hangup?call_id={call_id}",
        },
    }


def starts(agent: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = httpx.get(f"{agent}/_sim/starts").json()["starts"]
    return answer


def plivo_calls(plivo: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = httpx.get(f"{plivo}/_sim/calls").json()["calls"]
    return answer


def test_start_places_the_call_and_answers_the_request_uuid_as_call_uuid(
    agent: str, plivo: str, receiver: Receiver, until: Callable[..., Any]
) -> None:
    answer = httpx.post(f"{agent}/start", json=start_body(receiver))
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "call_initiated" and body["phone_number"] == PHONE
    (call,) = plivo_calls(plivo)
    assert body["call_uuid"] == call["request_uuid"] and call["to"] == PHONE.lstrip("+")
    assert call["urls"]["answer"]["url"] == f"{agent}/answer"
    assert call["urls"]["hangup"]["url"].endswith("/hangup?call_id=call-1")
    until(lambda: receiver.on("/hangup"))  # callbacks go to the queue's URLs, passed through


def test_status_endpoint_follows_the_call_to_its_end(
    agent: str, plivo: str, receiver: Receiver, until: Callable[..., Any]
) -> None:
    """Two calls, so each state is held while it is read (no timing window): call-1 runs to its end, then call-2
    stays queued at Plivo."""
    script(plivo, PHONE, talk_for=4, recording=True)
    httpx.post(f"{agent}/start", json=start_body(receiver)).raise_for_status()
    done = until(lambda: (s := httpx.get(f"{agent}/calls/call-1").json())["status"] == "completed" and s)
    assert done["call_uuid"] and done["duration"] == 4 and done["hangup_cause"] == "Normal Hangup"
    assert done["recording_url"]
    script(plivo, PHONE, queue_for=1_000_000)
    request_uuid = httpx.post(f"{agent}/start", json=start_body(receiver, "call-2")).json()["call_uuid"]
    queued = httpx.get(f"{agent}/calls/call-2").json()
    assert queued == {"call_id": "call-2", "request_uuid": request_uuid, "call_uuid": None, "status": "queued",
                      "duration": None, "hangup_cause": None, "recording_url": None}  # fmt: skip


def test_unknown_call_id_is_an_explicit_not_started(agent: str) -> None:
    answer = httpx.get(f"{agent}/calls/never-started")
    assert answer.status_code == 404 and answer.json()["status"] == "not_started"


def test_stock_mode_behaves_like_pipecats_example(agent: str, plivo: str, receiver: Receiver) -> None:
    assert httpx.post(f"{agent}/_sim/mode", json={"mode": "stock"}).json()["mode"] == "stock"
    first = httpx.post(f"{agent}/start", json=start_body(receiver), headers={"Idempotency-Key": "call-1"})
    again = httpx.post(f"{agent}/start", json=start_body(receiver), headers={"Idempotency-Key": "call-1"})
    assert first.status_code == again.status_code == 200 and first.json() != again.json()
    calls = plivo_calls(plivo)
    assert len(calls) == 2, "the stock example ignores Idempotency-Key: a repeated start dials again"
    assert all(set(c["urls"]) == {"answer"} for c in calls), [c["urls"] for c in calls]  # no ring/hangup URLs
    status = httpx.get(f"{agent}/calls/call-1")
    assert status.status_code == 404 and status.json() == {"detail": "Not Found"}  # FastAPI's bare 404: no route
    httpx.post(f"{agent}/_sim/reset").raise_for_status()
    assert httpx.get(f"{agent}/_sim/mode").json() == {"mode": "conformant", "answer_delay": 0.0}


def test_answer_delay_dials_first_and_answers_late(agent: str, plivo: str, receiver: Receiver) -> None:
    httpx.post(f"{agent}/_sim/mode", json={"mode": "stock", "answer_delay": 1.0}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{agent}/start", json=start_body(receiver), timeout=0.2)
    assert len(plivo_calls(plivo)) == 1, "the person is being dialled although /start has not answered"


def test_conformant_agent_never_says_not_started_for_a_dial_plivo_may_hold(
    plivo: str, receiver: Receiver, until: Callable[..., Any]
) -> None:
    """Plivo accepts the create-call after the agent gave up on it: the agent cannot know, and says so."""
    with running(create_agent_app(plivo, AUTH_ID, AUTH_TOKEN, plivo_timeout=0.3)) as agent:
        httpx.post(f"{plivo}/_sim/faults", json={"delay": 1.0, "path_contains": "/Call/"}).raise_for_status()
        assert httpx.post(f"{agent}/start", json=start_body(receiver)).status_code == 502
        status = httpx.get(f"{agent}/calls/call-1")
        assert status.status_code == 200 and status.json()["status"] == "dial_unconfirmed"
        until(lambda: len(plivo_calls(plivo)) == 1)  # Plivo did place it


def test_repeated_start_returns_the_first_answer_and_dials_once(agent: str, plivo: str, receiver: Receiver) -> None:
    first = httpx.post(f"{agent}/start", json=start_body(receiver), headers={"Idempotency-Key": "call-1"})
    again = httpx.post(f"{agent}/start", json=start_body(receiver), headers={"Idempotency-Key": "call-1"})
    by_call_id = httpx.post(f"{agent}/start", json=start_body(receiver))  # no header: call_id is the key
    assert first.json() == again.json() == by_call_id.json()
    assert len(plivo_calls(plivo)) == 1
    assert [s["replayed"] for s in starts(agent)] == [False, True, True]


def test_error_fault_does_not_dial_and_is_recorded(agent: str, plivo: str, receiver: Receiver) -> None:
    httpx.post(f"{agent}/_sim/faults", json={"status": 503, "count": 1}).raise_for_status()
    assert httpx.post(f"{agent}/start", json=start_body(receiver)).status_code == 503
    assert httpx.get(f"{agent}/calls/call-1").status_code == 404
    assert httpx.get(f"{agent}/health").status_code == 200  # default fault path is /start only
    assert httpx.post(f"{agent}/start", json=start_body(receiver)).status_code == 200
    recorded = starts(agent)
    assert [(s["dialled"], (s["fault"] or {}).get("status")) for s in recorded] == [(False, 503), (True, None)]
    assert len(plivo_calls(plivo)) == 1


def test_slow_start_times_out_but_the_call_is_placed(agent: str, plivo: str, receiver: Receiver) -> None:
    httpx.post(f"{agent}/_sim/faults", json={"delay": 1.0}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{agent}/start", json=start_body(receiver), timeout=0.2)
    assert len(plivo_calls(plivo)) == 1
    status = httpx.get(f"{agent}/calls/call-1")
    assert status.status_code == 200 and status.json()["request_uuid"] == plivo_calls(plivo)[0]["request_uuid"]


def test_malformed_body_and_dropped_connection_after_dial(agent: str, plivo: str, receiver: Receiver) -> None:
    httpx.post(f"{agent}/_sim/faults", json={"body": "<html>oops</html>"}).raise_for_status()
    answer = httpx.post(f"{agent}/start", json=start_body(receiver, "call-a"))
    assert answer.status_code == 200 and answer.text == "<html>oops</html>"
    httpx.post(f"{agent}/_sim/faults", json={"drop_after_dial": True}).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{agent}/start", json=start_body(receiver, "call-b"))
    assert len(plivo_calls(plivo)) == 2
    assert httpx.get(f"{agent}/calls/call-b").json()["status"] in ("queued", "ringing", "in_progress", "completed")


def test_plivo_refusal_is_502_and_not_remembered(agent: str, plivo: str, receiver: Receiver) -> None:
    httpx.post(f"{plivo}/_sim/faults", json={"status": 503}).raise_for_status()
    assert httpx.post(f"{agent}/start", json=start_body(receiver)).status_code == 502
    assert httpx.get(f"{agent}/calls/call-1").status_code == 404
    assert httpx.post(f"{agent}/start", json=start_body(receiver)).status_code == 200


def test_answer_returns_stream_xml(agent: str) -> None:
    answer = httpx.post(f"{agent}/answer", data={"CallUUID": "x"})
    assert answer.status_code == 200 and "<Stream" in answer.text and "/ws</Stream>" in answer.text


def stream(client: redis.Redis, key: str) -> list[dict[str, str]]:
    return [fields for _, fields in cast(list[tuple[str, dict[str, str]]], client.xrange(key))]


def test_status_changes_are_written_to_the_redis_stream(
    plivo: str, receiver: Receiver, until: Callable[..., Any]
) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("REDIS_URL not set: run through `python -m local.with_redis pytest`")
    prefix = f"simtest{time.time_ns()}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        app = create_agent_app(plivo, AUTH_ID, AUTH_TOKEN, redis_url=redis_url, key_prefix=prefix, poll_interval=0.01)
        with running(app) as agent:
            script(plivo, PHONE, talk_for=3)
            httpx.post(f"{agent}/start", json=start_body(receiver)).raise_for_status()
            until(lambda: any(f["status"] == "completed" for f in stream(client, f"{prefix}:agent-events")))
        events = stream(client, f"{prefix}:agent-events")
    finally:
        client.delete(f"{prefix}:agent-events")
        client.close()
    assert events[0]["status"] == "queued" and events[-1]["status"] == "completed"
    assert all(e["call_id"] == "call-1" and e["source"] == "agent" and float(e["at"]) > 0 for e in events)
    assert events[-1]["duration"] == "3" and events[-1]["hangup_cause"] == "Normal Hangup"


def test_deployed_agent_checks_the_callers_google_id_token_before_the_body(
    _shared_plivo: str, plivo: str, receiver: Receiver
) -> None:
    """Public because Plivo must reach it, the deployed agent lets only the queue's account start calls."""
    from local.simulators.id_tokens import DEFAULT_CALLER, CallerPolicy, issue

    with running(create_agent_app(_shared_plivo, AUTH_ID, AUTH_TOKEN, caller_policy=CallerPolicy())) as agent:

        def start(headers: dict[str, str], body: Any) -> httpx.Response:
            return httpx.post(f"{agent}/start", json=body, headers=headers)

        bearer = {"Authorization": f"Bearer {issue(agent)}"}
        refusals = {
            "anonymous": start({}, start_body(receiver)),
            "anonymous, invalid body": start({}, {}),
            "wrong audience": start({"Authorization": f"Bearer {issue('https://elsewhere.run.app')}"}, {}),
            "expired": start({"Authorization": f"Bearer {issue(agent, lifetime_s=-60)}"}, {}),
            "forged": start(
                {"Authorization": f"Bearer {issue(agent, key='not-google-but-long-enough-for-hs256')}"}, {}
            ),
            "another caller": start({"Authorization": f"Bearer {issue(agent, 'intruder@x.iam')}"}, {}),
        }
        assert {why: r.status_code for why, r in refusals.items()} == {
            "anonymous": 401, "anonymous, invalid body": 401, "wrong audience": 401, "expired": 401, "forged": 401,
            "another caller": 403,
        }  # fmt: skip
        assert "audience is not" in refusals["wrong audience"].json()["detail"]
        assert not any(s["dialled"] for s in starts(agent)), "nothing refused was dialled"
        assert httpx.get(f"{agent}/calls/call-1").status_code == 401
        placed = start(bearer, start_body(receiver))
        assert placed.status_code == 200 and placed.json()["status"] == "call_initiated"
        assert httpx.get(f"{agent}/calls/call-1", headers=bearer).json()["call_id"] == "call-1"
        assert DEFAULT_CALLER.startswith("callqueue-queue@")
