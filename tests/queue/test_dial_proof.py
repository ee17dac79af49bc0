"""The fault matrix of issue 9: whatever happens to a start request, each person is dialled exactly once and each
call reaches its real outcome — with pipecat's stock agent and with an agent that implements the status contract.

Real HTTP, the simulators and a real Redis. Callbacks go nowhere (PUBLIC_BASE_URL is a closed port), so every
outcome comes from Plivo polling alone, as with the stock agent in production. Counts are taken at the Plivo
simulator (`/_sim/calls`): a call there is a person's phone ringing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.simulators.agent import AGENT_MODES, AgentMode, create_agent_app
from local.simulators.backend import create_backend_app
from local.simulators.plivo import create_plivo_app
from local.simulators.server import running
from local.simulators.wiring import simulator_env
from tests.queue.conftest import AUTH_ID, AUTH_TOKEN, FINAL, Sims, wait_for

AGENT_PLIVO_TIMEOUT_S = 1.0  # the agent gives up on Plivo's create-call after this (pipecat: the SDK's timeout)
_numbers = itertools.count(1)


def new_number() -> str:
    return f"+1415555{next(_numbers):04d}"


@pytest.fixture(params=AGENT_MODES)
def agent_mode(request: pytest.FixtureRequest) -> AgentMode:
    mode: AgentMode = request.param
    return mode


@pytest.fixture
def proof_sims(agent_mode: AgentMode) -> Iterator[Sims]:
    with ExitStack() as stack:
        plivo = stack.enter_context(running(create_plivo_app(AUTH_ID, AUTH_TOKEN, cps=50, time_scale=0.2)))
        agent_app = create_agent_app(plivo, AUTH_ID, AUTH_TOKEN, mode=agent_mode, plivo_timeout=AGENT_PLIVO_TIMEOUT_S)
        agent = stack.enter_context(running(agent_app))
        backend = stack.enter_context(running(create_backend_app()))
        yield Sims(plivo, agent, backend)


@pytest.fixture
def proof_env(redis_url: str, key_prefix: str, proof_sims: Sims) -> dict[str, str]:
    return {
        **simulator_env(
            plivo=proof_sims.plivo,
            agent=proof_sims.agent,
            backend=proof_sims.backend,
            auth_id=AUTH_ID,
            auth_token=AUTH_TOKEN,
        ),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",  # no callback reaches the queue: Plivo polling alone
        "REQUEST_TIMEOUT": "2",
        "INITIAL_STATUS_DELAY": "1",
        "STATUS_CHECK_INTERVAL": "1",
        "DISPATCH_RATE": "50",
        "MAX_CONCURRENT_CALLS": "1000",
        "DIAL_PROOF_SETTLE": "1",
    }


@pytest.fixture
def queue_service(proof_env: dict[str, str]) -> Iterator[httpx.Client]:
    with running(create_app(load_settings(proof_env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def plivo_calls_to(sims: Sims, number: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = httpx.get(f"{sims.plivo}/_sim/calls").json()["calls"]
    return [c for c in calls if c["to"] == number.lstrip("+")]


def settle(client: httpx.Client, call_id: str, timeout: float = 60) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    def final() -> bool:
        holder.update(client.get(f"/api/calls/{call_id}").json())
        return holder["status"] in FINAL

    wait_for(final, timeout, f"call {call_id} to reach an outcome")
    return holder


def plivo_fault(sims: Sims, **rule: Any) -> None:
    httpx.post(f"{sims.plivo}/_sim/faults", json=rule).raise_for_status()


def script(sims: Sims, number: str, **fields: Any) -> None:
    httpx.post(f"{sims.plivo}/_sim/scripts", json={"to": number, "script": fields}).raise_for_status()


def slow_plivo_accept(sims: Sims, number: str) -> None:
    """Plivo accepts the create-call after the agent gave up on it (the agent answers 502 or 500), and keeps the
    call queued a while (4 s here)."""
    plivo_fault(sims, delay=AGENT_PLIVO_TIMEOUT_S + 1, path_contains="/Call/", count=1)
    script(sims, number, queue_for=20)


# Each fault: how to set it up for the next call, to `number`.
FAULTS: dict[str, Callable[[Sims, str], None]] = {
    # The agent hangs past REQUEST_TIMEOUT and never dials (a cold start that gave up).
    "agent timeout before dialling": lambda s, n: s.agent_fault(status=504, delay=4, process=False),
    # The agent dials, then answers after REQUEST_TIMEOUT (a cold start, a slow Plivo): the person is being called.
    "agent timeout after dialling": lambda s, n: s.agent_fault(delay=4),
    "agent 5xx after dialling": lambda s, n: s.agent_fault(status=500, process=True),
    "connection cut after the request was sent": lambda s, n: s.agent_fault(drop_after_dial=True),
    "Plivo slow to accept the create-call": slow_plivo_accept,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_person_is_dialled_once_and_each_call_reaches_its_real_outcome(
    queue_service: httpx.Client, proof_sims: Sims, agent_mode: str, fault: str
) -> None:
    number = new_number()
    FAULTS[fault](proof_sims, number)
    response = queue_service.post(
        "/api/calls/queue", json={"phone_number": number, "campaign_id": "proof", "call_config": {"flow_name": "proof"}}
    )
    assert response.status_code == 202, response.text
    call_id = response.json()["call_id"]
    record = settle(queue_service, call_id)
    dials = plivo_calls_to(proof_sims, number)
    assert len(dials) == 1, f"{fault} ({agent_mode} agent): {number} dialled {len(dials)} times: {record['history']}"
    [dial] = dials
    assert record["status"] == "completed" == dial["status"], (record["status"], dial["status"], record["history"])
    assert record["call_uuid"] == dial["call_uuid"], "the call is the one Plivo placed"
    assert record["duration"] == 3


def test_without_proof_the_call_waits_then_becomes_unknown_and_is_never_redialled(
    proof_env: dict[str, str], proof_sims: Sims, agent_mode: str
) -> None:
    """The start's answer is lost and Plivo cannot be searched (it answers 503): nothing proves the dial absent —
    not even the conformant agent's `not_started`, which says nothing of a create-call Plivo may hold."""
    env = {**proof_env, "DIAL_PROOF_TIMEOUT": "10", "MAX_STATUS_RETRIES": "0"}
    proof_sims.agent_fault(status=504, delay=4, process=False)
    plivo_fault(proof_sims, status=503, count=100_000, path_contains="/Call/")
    with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        number = new_number()
        call_id = client.post(
            "/api/calls/queue",
            json={"phone_number": number, "campaign_id": "proof", "call_config": {"flow_name": "proof"}},
        ).json()["call_id"]
        holder: dict[str, Any] = {}

        def unknown() -> bool:
            holder.update(client.get(f"/api/calls/{call_id}").json())
            return bool(holder["status"] == "unknown")

        wait_for(unknown, 60, "the call to become unknown")
    assert "DIAL_PROOF_TIMEOUT" in holder["reason"] and "not re-dialled" in holder["reason"], holder["reason"]
    assert "Plivo search failed" in holder["reason"], holder["reason"]
    starts = [s for s in proof_sims.starts() if s["call_id"] == call_id]
    assert len(starts) == 1, "a start whose outcome is unknown is never sent again without proof"


def test_calls_reach_their_real_outcome_from_plivo_alone_and_health_names_the_agent_kind(
    queue_service: httpx.Client, proof_sims: Sims, agent_mode: str
) -> None:
    """No fault: the agent answers promptly. With the stock agent no callback can come (it passes none to Plivo)."""
    outcomes = {new_number(): "completed", new_number(): "busy", new_number(): "no_answer"}
    for number, outcome in outcomes.items():
        script(proof_sims, number, outcome=outcome)
    ids = {
        queue_service.post(
            "/api/calls/queue", json={"phone_number": n, "campaign_id": "proof", "call_config": {"flow_name": "p"}}
        ).json()["call_id"]: n
        for n in outcomes
    }
    for call_id, number in ids.items():
        record = settle(queue_service, call_id)
        [dial] = plivo_calls_to(proof_sims, number)
        assert record["status"] == outcomes[number], record["history"]
        assert not [h for h in record["history"] if h["source"].startswith("plivo-callback")], record["history"]
        assert record["history"][-1]["source"].startswith("plivo-api"), "the outcome comes from Plivo polling"
        if agent_mode == "stock":
            assert set(dial["urls"]) == {"answer"}, "the stock agent passes no callback URL to Plivo"
    agent = queue_service.get("/api/health").json()["agent"]
    if agent_mode == "stock":
        assert agent["kind"] == "stock" and agent["callbacks"].startswith("not configured")
        assert "ring_url" in agent["how_to_add_callbacks"] and "DIAL_PROOF_SETTLE" in agent["retries"]
    else:
        assert agent["kind"] == "status_contract" and "how_to_add_callbacks" not in agent


def test_a_call_placed_without_callbacks_is_seen_ringing_and_talking_not_only_at_the_miss_deadline(
    proof_env: dict[str, str], proof_sims: Sims, agent_mode: str
) -> None:
    """Only the request uuid is known and no callback comes: the live sweep learns the call uuid from Plivo's live
    calls, so the call is tracked while it talks (AUTO_MISS_TIMEOUT is 300 s here: the old path would wait that)."""
    number = new_number()
    script(proof_sims, number, answer_after=2, talk_for=100)  # × time scale 0.2: 20 s of talk
    env = {**proof_env, "AUTO_MISS_TIMEOUT": "300"}
    with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        call_id = client.post(
            "/api/calls/queue", json={"phone_number": number, "campaign_id": "proof", "call_config": {"flow_name": "p"}}
        ).json()["call_id"]
        holder: dict[str, Any] = {}

        def talking() -> bool:
            holder.update(client.get(f"/api/calls/{call_id}").json())
            return bool(holder["status"] == "in_progress")

        wait_for(talking, 60, "the call to be seen talking")
        [dial] = plivo_calls_to(proof_sims, number)
        assert holder["call_uuid"] == dial["call_uuid"]
        record = settle(client, call_id)
    assert record["status"] == "completed" and record["duration"] == 100
