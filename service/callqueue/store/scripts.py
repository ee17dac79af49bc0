"""Lua scripts: each multi-key change of a call happens in one atomic step, so no crash leaves it half-written.

All scripts take the key prefix as ARGV[1] and build keys the same way store/keys.py does; they read the clock
with Redis TIME so every instance shares one clock. (Keys built inside scripts: a single Redis or Memorystore
primary, not Redis Cluster.)
"""

from __future__ import annotations

from callqueue.metrics.tally import TALLY_FINAL_LUA
from callqueue.states import IN_FLIGHT, RANK
from callqueue.store.keys import RECENT_CALLS_KEPT


def _lua_table(entries: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(entries.items())) + "}"


# The state machine of states.py, compiled into Lua.
_PRELUDE = (
    f"""
local RANK = {_lua_table({s.value: str(r) for s, r in RANK.items()})}
local IN_FLIGHT = {_lua_table({s.value: "true" for s in IN_FLIGHT})}
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function may(cur, new)
  if RANK[new] == nil then return false end
  if RANK[cur] == 10 then return false end
  if cur == 'unknown' then return RANK[new] == 10 end
  return RANK[new] > RANK[cur]
end
"""
    + TALLY_FINAL_LUA
    + """
local function record(id, cur, new, source, detail_json)
  local ck = p .. ':call:' .. id
  redis.call('HSET', ck, 'status', new, 'updated_at', now)
  local entry = cjson.encode({at=now, status=new, source=source, detail=cjson.decode(detail_json)})
  redis.call('RPUSH', ck .. ':history', entry)
  if cur and cur ~= '' then redis.call('HINCRBY', p .. ':counts', cur, -1) end
  redis.call('HINCRBY', p .. ':counts', new, 1)
  if IN_FLIGHT[new] then
    redis.call('ZADD', p .. ':inflight', 'NX', now, id)
  else
    redis.call('ZREM', p .. ':inflight', id)
  end
  if RANK[new] >= 9 then
    redis.call('ZREM', p .. ':tracking', id)
    redis.call('ZREM', p .. ':dispatching', id)
    if cur == 'unknown' then redis.call('ZREM', p .. ':outbox', id .. ':unknown') end
    redis.call('ZADD', p .. ':outbox', now, id .. ':' .. new)
    tally_final(id, new)
  end
end

local function set_fields(id, fields_json, overwrite)
  local ck = p .. ':call:' .. id
  for k, v in pairs(cjson.decode(fields_json)) do
    if v ~= cjson.null and v ~= '' then
      if overwrite then redis.call('HSET', ck, k, tostring(v)) else redis.call('HSETNX', ck, k, tostring(v)) end
      if k == 'call_uuid' then redis.call('SET', p .. ':cuid:' .. v, id, 'EX', 604800) end
      if k == 'request_uuid' then redis.call('SET', p .. ':req:' .. v, id, 'EX', 604800) end
    end
  end
end

local function pace_wait(rate)
  redis.call('ZREMRANGEBYSCORE', p .. ':pace', '-inf', now - 60000)
  if redis.call('ZCOUNT', p .. ':pace', now - 999, '+inf') >= rate then
    local first = redis.call('ZRANGEBYSCORE', p .. ':pace', now - 999, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return math.max(1, tonumber(first[2]) + 1000 - now)
  end
  return 0
end
"""
)

# ARGV: prefix, call_id, idempotency_key|'', fingerprint, idem_ttl_s, phone, campaign, config_json, traceparent|''
ENQUEUE = (
    _PRELUDE
    + f"""
local id = ARGV[2]
local idem = ARGV[3]
if idem ~= '' then
  local existing = redis.call('GET', p .. ':idem:' .. idem)
  if existing then return {{'replay', existing}} end
end
local seq = redis.call('INCR', p .. ':seq')
local ck = p .. ':call:' .. id
redis.call('HSET', ck, 'call_id', id, 'phone_number', ARGV[6], 'campaign_id', ARGV[7], 'call_config', ARGV[8],
  'created_at', now, 'seq', seq, 'attempts', 0, 'fingerprint', ARGV[4])
if idem ~= '' then
  redis.call('HSET', ck, 'idempotency_key', idem)
  redis.call('SET', p .. ':idem:' .. idem, id, 'EX', tonumber(ARGV[5]))
end
if ARGV[9] ~= '' then redis.call('HSET', ck, 'traceparent', ARGV[9]) end
record(id, nil, 'queued', 'api', '{{}}')
redis.call('ZADD', p .. ':queued', seq, id)
redis.call('LPUSH', p .. ':recent', id)
redis.call('LTRIM', p .. ':recent', 0, {RECENT_CALLS_KEPT - 1})
return {{'created', id}}
"""
)

# ARGV: prefix, rate, max_in_flight, lease_ms, worker_id
CLAIM = (
    _PRELUDE
    + """
local wait = pace_wait(tonumber(ARGV[2]))
if wait > 0 then return {'wait', tostring(wait)} end
if redis.call('ZCARD', p .. ':inflight') >= tonumber(ARGV[3]) then return {'full'} end
local head = redis.call('ZRANGE', p .. ':queued', 0, 0)
if #head == 0 then return {'empty'} end
local id = head[1]
redis.call('ZREM', p .. ':queued', id)
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if cur ~= 'queued' then return {'skipped', id} end
local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
redis.call('HSET', ck, 'worker', ARGV[5])
record(id, cur, 'dispatching', 'dispatcher', cjson.encode({attempt=attempt, worker=ARGV[5]}))
redis.call('ZADD', p .. ':dispatching', now + tonumber(ARGV[4]), id)
redis.call('ZADD', p .. ':pace', now, id .. ':' .. attempt)
return {'claimed', id}
"""
)

# A further start attempt of a call the worker already holds. ARGV: prefix, rate, call_id, lease_ms
PACE_RETRY = (
    _PRELUDE
    + """
local id = ARGV[3]
local ck = p .. ':call:' .. id
if redis.call('HGET', ck, 'status') ~= 'dispatching' then return {'lost'} end
local wait = pace_wait(tonumber(ARGV[2]))
if wait > 0 then return {'wait', tostring(wait)} end
local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
redis.call('ZADD', p .. ':dispatching', 'XX', now + tonumber(ARGV[4]), id)
redis.call('ZADD', p .. ':pace', now, id .. ':' .. attempt)
return {'ok', tostring(attempt)}
"""
)

# ARGV: prefix, call_id, new_status, source, detail_json, fields_json
TRANSITION = (
    _PRELUDE
    + """
local id = ARGV[2]
local cur = redis.call('HGET', p .. ':call:' .. id, 'status')
if not cur then return {'missing'} end
if may(cur, ARGV[3]) then
  set_fields(id, ARGV[6], true)
  record(id, cur, ARGV[3], ARGV[4], ARGV[5])
  return {'changed', cur}
end
set_fields(id, ARGV[6], false)
return {'unchanged', cur}
"""
)

# The agent accepted the start. ARGV: prefix, call_id, request_uuid, detail_json, first_check_delay_ms
MARK_DISPATCHED = (
    _PRELUDE
    + """
local id = ARGV[2]
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if not cur then return {'missing'} end
redis.call('ZREM', p .. ':dispatching', id)
set_fields(id, cjson.encode({request_uuid=ARGV[3]}), true)
redis.call('HSET', ck, 'dispatched_at', now)
if may(cur, 'dispatched') then
  record(id, cur, 'dispatched', 'dispatcher', ARGV[4])
end
if RANK[redis.call('HGET', ck, 'status')] < 9 then
  redis.call('ZADD', p .. ':tracking', now + tonumber(ARGV[5]), id)
end
return {'ok', cur}
"""
)

# The agent certainly did not start the call: back in line at its original place. ARGV: prefix, call_id, detail_json
REQUEUE = (
    _PRELUDE
    + """
local id = ARGV[2]
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if cur ~= 'dispatching' then return {'skipped', tostring(cur)} end
redis.call('ZREM', p .. ':dispatching', id)
record(id, cur, 'queued', 'dispatcher', ARGV[3])
redis.call('ZADD', p .. ':queued', tonumber(redis.call('HGET', ck, 'seq')), id)
return {'requeued'}
"""
)

# ARGV: prefix, call_id
CANCEL = (
    _PRELUDE
    + """
local id = ARGV[2]
local cur = redis.call('HGET', p .. ':call:' .. id, 'status')
if not cur then return {'missing'} end
if cur ~= 'queued' then return {'not_cancelable', cur} end
redis.call('ZREM', p .. ':queued', id)
record(id, cur, 'canceled', 'api', '{"reason": "canceled before dispatch"}')
return {'canceled'}
"""
)

# Leases that ran out: take up to ARGV[3] of them, extending each by ARGV[2] ms. ARGV: prefix, lease_ms, limit
CLAIM_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"""

# Set the next check of a tracked call, unless it reached a final status meanwhile. ARGV: prefix, call_id, delay_ms
RESCHEDULE = (
    _PRELUDE
    + """
local cur = redis.call('HGET', p .. ':call:' .. ARGV[2], 'status')
if not cur or RANK[cur] == 10 then return 0 end
redis.call('ZADD', p .. ':tracking', now + tonumber(ARGV[3]), ARGV[2])
return 1
"""
)
