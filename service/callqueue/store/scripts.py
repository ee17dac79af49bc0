"""Lua scripts: each multi-key change of a call happens in one atomic step, so no crash leaves it half-written.

All scripts take the key prefix as ARGV[1] and build keys the same way store/keys.py does; they read the clock
with Redis TIME so every instance shares one clock. (Keys built inside scripts: a single Redis or Memorystore
primary, not Redis Cluster.)
"""

from __future__ import annotations

from callqueue.metrics.tally import TALLY_FINAL_LUA
from callqueue.settings import PLAIN_BY_NAME
from callqueue.states import IN_FLIGHT, RANK
from callqueue.store.keys import RECENT_CALLS_KEPT

# Calls accepted before CALL_RETENTION existed carry no `retention_s` field: they are kept for the default.
_RETENTION_DEFAULT_S = int(PLAIN_BY_NAME["CALL_RETENTION"].default or "86400")


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

-- Every key of one call expires together: the record, its history, the callbacks it took, and the keys that point
-- at it (Idempotency-Key, Plivo's request and call uuids). Only for finished calls: a live call never expires.
local function expire_call(id, seconds)
  local ck = p .. ':call:' .. id
  local f = redis.call('HMGET', ck, 'idempotency_key', 'request_uuid', 'call_uuid')
  local keys = {{ck, ck .. ':history', ck .. ':callbacks'}}
  if f[1] then keys[#keys + 1] = p .. ':idem:' .. f[1] end
  if f[2] then keys[#keys + 1] = p .. ':req:' .. f[2] end
  if f[3] then keys[#keys + 1] = p .. ':cuid:' .. f[3] end
  for _, k in ipairs(keys) do redis.call('EXPIRE', k, seconds) end
end

local function retention(id)
  return tonumber(redis.call('HGET', p .. ':call:' .. id, 'retention_s')) or {_RETENTION_DEFAULT_S}
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
    -- Tallied before the keys get their expiry (the tally reads the call's campaign and dial time).
    tally_final(id, new)
    expire_call(id, retention(id))
  end
end

local function set_fields(id, fields_json, overwrite)
  local ck = p .. ':call:' .. id
  for k, v in pairs(cjson.decode(fields_json)) do
    if v ~= cjson.null and v ~= '' then
      if overwrite then redis.call('HSET', ck, k, tostring(v)) else redis.call('HSETNX', ck, k, tostring(v)) end
      -- An index outlives neither its call (once finished) nor 7 days.
      local ttl = redis.call('PTTL', ck)
      if ttl <= 0 then ttl = 604800000 end
      if k == 'call_uuid' then redis.call('SET', p .. ':cuid:' .. v, id, 'PX', ttl) end
      if k == 'request_uuid' then redis.call('SET', p .. ':req:' .. v, id, 'PX', ttl) end
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

# ARGV: prefix, call_id, idempotency_key|'', fingerprint, retention_s, phone, campaign, config_json, max_queued,
#       traceparent|''
# Admission and insertion in one step: with MAX_QUEUED_CALLS queued, nothing is written ({'full', queued}). A replay
# of a known Idempotency-Key is answered even then. The key lives as long as its call (see expire_call). The id goes
# on the `recent` list (the operator page's latest calls), trimmed to RECENT_CALLS_KEPT: the list holds bare ids, so
# it keeps no call alive, and its reader skips an id whose call has expired.
ENQUEUE = (
    _PRELUDE
    + f"""
local id = ARGV[2]
local idem = ARGV[3]
if idem ~= '' then
  local existing = redis.call('GET', p .. ':idem:' .. idem)
  if existing then return {{'replay', existing}} end
end
local queued = redis.call('ZCARD', p .. ':queued')
if queued >= tonumber(ARGV[9]) then return {{'full', tostring(queued)}} end
local seq = redis.call('INCR', p .. ':seq')
local ck = p .. ':call:' .. id
redis.call('HSET', ck, 'call_id', id, 'phone_number', ARGV[6], 'campaign_id', ARGV[7], 'call_config', ARGV[8],
  'created_at', now, 'seq', seq, 'attempts', 0, 'fingerprint', ARGV[4], 'retention_s', ARGV[5])
if idem ~= '' then
  redis.call('HSET', ck, 'idempotency_key', idem)
  redis.call('SET', p .. ':idem:' .. idem, id)
end
if ARGV[10] ~= '' then redis.call('HSET', ck, 'traceparent', ARGV[10]) end
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

# Set the next check of a tracked call, unless it reached a final status meanwhile. An `unknown` call is kept at
# least its retention past its next check: it expires only once reconciliation stops. ARGV: prefix, call_id, delay_ms
RESCHEDULE = (
    _PRELUDE
    + """
local cur = redis.call('HGET', p .. ':call:' .. ARGV[2], 'status')
if not cur or RANK[cur] == 10 then return 0 end
redis.call('ZADD', p .. ':tracking', now + tonumber(ARGV[3]), ARGV[2])
if cur == 'unknown' then
  local keep = retention(ARGV[2]) + math.ceil(tonumber(ARGV[3]) / 1000)
  if redis.call('TTL', p .. ':call:' .. ARGV[2]) < keep then expire_call(ARGV[2], keep) end
end
return 1
"""
)

# Keep a finished call (all its keys) at least ARGV[3] more seconds, or its own retention when ARGV[3] is '': while
# its result is still being delivered, and after it is dead-lettered. A call that is not finished has no expiry and
# is left alone. ARGV: prefix, call_id, seconds|''
KEEP_FINISHED = (
    _PRELUDE
    + """
local id = ARGV[2]
local ttl = redis.call('PTTL', p .. ':call:' .. id)
if ttl < 0 then return 0 end
local seconds = tonumber(ARGV[3]) or retention(id)
if ttl < seconds * 1000 then expire_call(id, seconds) end
return 1
"""
)

# A verified callback was applied: remember what was signed (its digest) as long as the call is kept, so the same
# signed request is refused from now on. ARGV: prefix, call_id, digest
SPEND_CALLBACK = (
    _PRELUDE
    + """
local ck = p .. ':call:' .. ARGV[2]
local ttl = redis.call('PTTL', ck)
if ttl == -2 then return 0 end
local added = redis.call('SADD', ck .. ':callbacks', ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', ck .. ':callbacks', ttl) end
return added
"""
)
