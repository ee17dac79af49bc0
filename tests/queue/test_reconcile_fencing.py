"""A reconciler overtaken while it looked (it stalled past its lease, another took the call over) writes nothing.

The reconciler takes each call over under a new claim token and fences every write with it. Here the agent lookup
stands in for the stall: while it is "waiting", the lease is made to run out (by the store's own clock, a score of
0) and another reconciler takes the call over. Whatever the stale one then decides (adopt, requeue, wait, give up),
the call's record, history and indexes are exactly as the new holder left them, and one warning names both tokens.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from callqueue.clients.agent import AgentCallStatus, StatusAnswer
from callqueue.dispatch.reconcile import DispatchReconciler
from callqueue.settings import load_settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from tests.queue.test_fencing import CALL, LEASE, RATE, SLOTS, run, snapshot

FOUND = StatusAnswer(
    "found", AgentCallStatus("x", "req-1", "cuid-1", "in-progress", None, None, None), "200 from the agent"
)
ANSWERS = {
    "adopt (the agent knows the dial)": FOUND,
    "requeue (the agent says not_started)": StatusAnswer("not_started", None, '404 {"status": "not_started"}'),
    "wait (the agent gives no word)": StatusAnswer("no_word", None, "404 Not Found"),
    "give up (no word past DIAL_PROOF_TIMEOUT)": StatusAnswer("no_word", None, "404 Not Found"),
}


class OvertakingAgent:
    """An agent whose status lookup stalls long enough for another reconciler to take the call over."""

    def __init__(self, store: CallStore, answer: StatusAnswer) -> None:
        self.store, self.answer = store, answer
        self.overtaken: dict[str, Any] = {}

    async def lookup(self, attempt_id: str) -> StatusAnswer:
        call_id = attempt_id.split(":")[0] if ":" in attempt_id else attempt_id
        await self.store.redis.zadd(self.store.keys.dispatching, {call_id: 0})  # the lease ran out meanwhile
        taken = await self.store.take_over_dispatches(LEASE)
        assert [c for c, _ in taken] == [call_id]
        self.overtaken = await snapshot(self.store, call_id)
        return self.answer


@pytest.mark.parametrize("decision", list(ANSWERS))
def test_a_reconciler_overtaken_by_another_cannot_write(
    redis_url: str, key_prefix: str, decision: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DIAL_PROOF_TIMEOUT": "60"})

    async def body(store: CallStore) -> None:
        call_id = (await store.enqueue(*CALL)).call_id
        claim = await store.claim(RATE, SLOTS, 0, "worker-a")  # its worker died: the lease is due at once
        assert claim.outcome == "claimed" and claim.call_id == call_id
        if decision.startswith("give up"):
            await store.set_tracking_fields(call_id, proof_since=store.now_ms() - 61_000)
        agent = OvertakingAgent(store, ANSWERS[decision])
        reconciler = DispatchReconciler(store, agent, settings, plivo=None)  # type: ignore[arg-type]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="callqueue.dispatch"):
            assert await reconciler.run_once() == 1
        assert agent.overtaken, "the reconciler asked the agent"
        assert await snapshot(store, call_id) == agent.overtaken
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.DISPATCHING
        refused = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
        assert len(refused) == 1, refused

    run(redis_url, key_prefix, body)


def test_the_reconciler_that_holds_the_call_still_writes(redis_url: str, key_prefix: str) -> None:
    """The control: the same reconciler, not overtaken, requeues a call the agent never started."""
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix})

    class Agent:
        async def lookup(self, attempt_id: str) -> StatusAnswer:
            return ANSWERS["requeue (the agent says not_started)"]

    async def body(store: CallStore) -> None:
        call_id = (await store.enqueue(*CALL)).call_id
        await store.claim(RATE, SLOTS, 0, "worker-a")
        assert await DispatchReconciler(store, Agent(), settings, plivo=None).run_once() == 1  # type: ignore[arg-type]
        record = await store.get(call_id)
        assert record is not None and record.status is CallStatus.QUEUED

    run(redis_url, key_prefix, body)
