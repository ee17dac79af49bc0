"""A result that can never be sent is dead-lettered with its reason; the delivery loop goes on with the others."""

from __future__ import annotations

import json
from typing import cast

from tests.tracking.conftest import StackFactory, wait_for


def test_a_result_that_is_not_json_is_dead_lettered_and_delivery_goes_on(stack: StackFactory) -> None:
    s = stack(DISPATCH_WORKERS="0")  # calls stay queued until cancelled: no dial needed
    poisoned, healthy = s.queue("+14155550100"), s.queue("+14155550101")
    # What an older version stored for `{"gain": 1e400}`: Python reads it back as infinity, which no JSON can carry.
    s.redis.hset(f"{s.prefix}:call:{poisoned}", "call_config", '{"flow_name":"test","gain":Infinity}')
    for call_id in (poisoned, healthy):
        assert s.http.post(f"{s.service}/api/calls/{call_id}/cancel").status_code == 200
    wait_for(lambda: f"{healthy}:canceled" in s.backend_results()["results"], 20, "the healthy result delivered")
    wait_for(lambda: s.redis.zscore(f"{s.prefix}:outbox:dead", f"{poisoned}:canceled"), 20, "the dead letter")
    why = json.loads(cast(str, s.redis.hget(f"{s.prefix}:call:{poisoned}", "trk_dead_letter")))
    assert "cannot be sent as JSON" in why["reason"], why
    assert cast(int, s.redis.zcard(f"{s.prefix}:outbox")) == 0, "nothing left to fail forever"
    assert f"{poisoned}:canceled" not in s.backend_results()["results"]
