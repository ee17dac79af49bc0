"""Queue-wide tallies kept in Redis, so what any instance of either role did is counted once, wherever it ran.

- Outcomes by campaign and the time from dial to outcome: counted by the Lua `tally_final` below, which the
  transition scripts (store/scripts.py) run in the same atomic step as every move into a final status (`unknown`
  included; a later settled outcome of an `unknown` call is counted again, under its own status).
- Plivo callbacks by result: counted by the webhook middleware (metrics/callbacks.py) in both roles; refusals
  are added coalesced, at most one write per second per process.
Campaign labels are bounded here too: the first CAMPAIGN_LABELS campaigns to reach an outcome keep their id
(`{prefix}:metrics:campaigns`), later ones are counted as `other`.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from callqueue.metrics.catalog import CAMPAIGN_LABELS, DIAL_TO_OUTCOME_BUCKETS, OTHER
from callqueue.store.keys import Keys

# Runs inside the transition scripts' prelude, where `p` (the key prefix) and `now` (Redis time, ms) are defined.
TALLY_FINAL_LUA = f"""
local DIAL_BUCKETS = {{{", ".join(str(b) for b in DIAL_TO_OUTCOME_BUCKETS)}}}
local function tally_final(id, new)
  local info = redis.call('HMGET', p .. ':call:' .. id, 'campaign_id', 'dispatched_at')
  local camp = info[1] or ''
  local known = p .. ':metrics:campaigns'
  if not redis.call('ZSCORE', known, camp) then
    if redis.call('ZCARD', known) < {CAMPAIGN_LABELS} then redis.call('ZADD', known, now, camp)
    else camp = '{OTHER}' end
  end
  redis.call('HINCRBY', p .. ':metrics:finished', new .. '|' .. camp, 1)
  local dialled = tonumber(info[2])
  if dialled then
    local seconds = math.max(0, now - dialled) / 1000
    local bucket = '+Inf'
    for _, le in ipairs(DIAL_BUCKETS) do
      if seconds <= le then bucket = tostring(le) break end
    end
    local h = p .. ':metrics:dial-to-outcome'
    redis.call('HINCRBY', h, bucket, 1)
    redis.call('HINCRBYFLOAT', h, 'sum', seconds)
  end
end
"""


async def tally_callback(redis: Redis, keys: Keys, event: str, result: str) -> None:
    await redis.hincrby(keys.metrics_callbacks, f"{event}|{result}", 1)  # type: ignore[misc]


async def add_callbacks(redis: Redis, keys: Keys, counts: Mapping[tuple[str, str], int]) -> None:
    """Add several (event, result) counts in one round trip (metrics/callbacks.py's coalesced refusals)."""
    async with redis.pipeline(transaction=True) as pipe:
        for (event, result), n in counts.items():
            pipe.hincrby(keys.metrics_callbacks, f"{event}|{result}", n)
        await pipe.execute()
