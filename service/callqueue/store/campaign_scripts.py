"""Lua scripts only campaigns use: bulk enqueue, planning scheduled calls, settings, pause/resume/cancel.

They share the prelude of scripts.py (state machine, `record`, the ready queues), so a call changes the same way
whichever script moves it. Times that calling hours depend on come from the service clock (ARGV), everything else
from Redis TIME.
"""

from __future__ import annotations

from callqueue.store.keys import RECENT_CALLS_KEPT
from callqueue.store.scripts import _PRELUDE

ENQUEUE_BATCH_STRIDE = 11

# One chunk of a bulk enqueue. ARGV: prefix, campaign, retention_s (each call's, CALL_RETENTION),
# campaign_retention_s, planned_wver, count, seq_base (the request took its sequence numbers at once, so its chunks
# may run in any order), traceparent|'', max_queued, all_or_nothing '1'|'', then per item (ENQUEUE_BATCH_STRIDE
# values): call_id, item_key|'', fingerprint, phone, config_json, status (queued|scheduled), plan_ms (queued:
# window_close or ''; scheduled: due), waiting_for, zones, zone_source, extra_fields_json|''.
# Items were planned with the campaign's settings at `planned_wver`; if they changed since, every item goes to the
# planner instead. Admission (MAX_QUEUED_CALLS, counted as in ENQUEUE: calls queued or scheduled) is decided here,
# atomically with the writes: with all_or_nothing, if the new items (items whose key is not known yet) do not all
# fit, nothing is written and the answer is {'full', waiting}; otherwise items are admitted in order while there is
# room and the rest answered 'full:{waiting}'. Returns per item 'created:{id}:{status}', 'replay:{id}',
# 'conflict:{id}' (the key was used for another call) or 'full:{waiting}', or {'campaign_canceled'}, or
# {'full', waiting}.
ENQUEUE_BATCH = (
    _PRELUDE
    + """
local cid = ARGV[2]
local camp = p .. ':campaign:' .. cid
local c = redis.call('HMGET', camp, 'state', 'wver')
if c[1] == 'canceled' then return {'campaign_canceled'} end
local replan = (c[2] or '0') ~= ARGV[5]
local n = tonumber(ARGV[6])
local S = """
    + str(ENQUEUE_BATCH_STRIDE)
    + """
local RECENT = """
    + str(RECENT_CALLS_KEPT)
    + """
local FIRST = 11
local seq = tonumber(ARGV[7])
local held = waiting()
local room = math.max(0, tonumber(ARGV[9]) - held)
local ipre, cpre = p .. ':idem-item:' .. cid .. '/', p .. ':call:'
if ARGV[10] == '1' then
  local new = 0
  for i = 0, n - 1 do
    local key = ARGV[FIRST + i * S + 1]
    if key == '' or redis.call('EXISTS', ipre .. key) == 0 then new = new + 1 end
  end
  if new > room then return {'full', tostring(held)} end
end
local out = {}
local qa, sa = {}, {}
local trace = ARGV[8]
local created = {}
for i = 0, n - 1 do
  local b = FIRST + i * S
  local id, key = ARGV[b], ARGV[b + 1]
  local existing = nil
  if key ~= '' then
    -- One command for the usual case, a new key: SETNX claims it (the key lives as long as its call: no expiry now,
    -- expire_call when the call is final). Without room nothing may be written, so the key is only read.
    local ikey = ipre .. key
    if room <= 0 or redis.call('SETNX', ikey, id) == 0 then existing = redis.call('GET', ikey) end
  end
  if existing then
    local fp = redis.call('HGET', cpre .. existing, 'fingerprint')
    if fp and fp ~= ARGV[b + 2] then
      out[#out + 1] = 'conflict:' .. existing
    else
      out[#out + 1] = 'replay:' .. existing
    end
  elseif room <= 0 then
    out[#out + 1] = 'full:' .. (held + #created)
  else
    room = room - 1
    local ck = cpre .. id
    local status = replan and 'scheduled' or ARGV[b + 5]
    local f = {'call_id', id, 'phone_number', ARGV[b + 3], 'campaign_id', cid, 'call_config', ARGV[b + 4],
      'created_at', now, 'seq', seq + i, 'status', status, 'accepted_as', status, 'wver', ARGV[5],
      'retention_s', ARGV[3]}
    if ARGV[b + 8] ~= '' then
      f[#f + 1] = 'zones'; f[#f + 1] = ARGV[b + 8]; f[#f + 1] = 'zone_source'; f[#f + 1] = ARGV[b + 9]
    end
    if ARGV[b + 10] ~= '' then
      for k, v in pairs(cjson.decode(ARGV[b + 10])) do f[#f + 1] = k; f[#f + 1] = tostring(v) end
    end
    if trace ~= '' then f[#f + 1] = 'traceparent'; f[#f + 1] = trace end
    if key ~= '' then
      f[#f + 1] = 'item_key'; f[#f + 1] = key; f[#f + 1] = 'fingerprint'; f[#f + 1] = ARGV[b + 2]
    end
    if status == 'queued' then
      if ARGV[b + 6] ~= '' then f[#f + 1] = 'window_close'; f[#f + 1] = ARGV[b + 6] end
      qa[#qa + 1] = seq + i
      qa[#qa + 1] = id
    else
      local score = replan and 0 or tonumber(ARGV[b + 6])
      f[#f + 1] = 'waiting_for'; f[#f + 1] = replan and 'planning' or ARGV[b + 7]
      if score > 0 then f[#f + 1] = 'due_at'; f[#f + 1] = score end
      sa[#sa + 1] = score
      sa[#sa + 1] = id
    end
    -- The call is its hash alone: its first history entry is `created_at` and `accepted_as` (records.py).
    redis.call('HSET', ck, unpack(f))
    created[#created + 1] = id
    out[#out + 1] = 'created:' .. id .. ':' .. status
  end
end
local function zadd_all(key, args)
  for j = 1, #args, 1000 do redis.call('ZADD', key, unpack(args, j, math.min(j + 999, #args))) end
end
zadd_all(p .. ':queued', qa)
zadd_all(camp .. ':queued', qa)
zadd_all(p .. ':scheduled', sa)
zadd_all(camp .. ':scheduled', sa)
local nq, ns = #qa / 2, #sa / 2
if nq > 0 then
  redis.call('HINCRBY', p .. ':counts', 'queued', nq)
  redis.call('HINCRBY', camp, 'n:queued', nq)
end
if ns > 0 then
  redis.call('HINCRBY', p .. ':counts', 'scheduled', ns)
  redis.call('HINCRBY', camp, 'n:scheduled', ns)
end
if #created > 0 then
  redis.call('LPUSH', p .. ':recent', unpack(created, math.max(1, #created - RECENT + 1), #created))
  redis.call('LTRIM', p .. ':recent', 0, RECENT - 1)
  campaign_join(cid, camp, ARGV[4])
  if nq > 0 then ready_join(cid, camp) end
end
return out
"""
)

# Scheduled calls the planner should look at now (service clock), each leased for lease_ms so one instance plans
# it. ARGV: prefix, clock_ms, lease_ms, limit
PLAN_DUE = """
local key = ARGV[1] .. ':scheduled'
local clock = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', key, '-inf', clock, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do redis.call('ZADD', key, 'XX', clock + tonumber(ARGV[3]), id) end
return ids
"""

# The planner's decision for one scheduled call. ARGV: prefix, call_id, action, time_ms, waiting_for|status,
# fields_json, detail_json, wver. action 'queue': ready now (time_ms = when its calling hours close, or '');
# 'wait': due at time_ms for `waiting_for`; 'end': never dialled, ends with the status in ARGV[5].
PLAN = (
    _PRELUDE
    + """
local id = ARGV[2]
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
local cid, camp = campaign_of(ck)
if cur ~= 'scheduled' then
  redis.call('ZREM', p .. ':scheduled', id)
  if camp then redis.call('ZREM', camp .. ':scheduled', id) end
  return {'skipped', tostring(cur)}
end
for k, v in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', ck, k, tostring(v)) end
redis.call('HDEL', ck, 'retry_after')
local action = ARGV[3]
if action == 'queue' then
  if ARGV[4] ~= '' then redis.call('HSET', ck, 'window_close', ARGV[4]) else redis.call('HDEL', ck, 'window_close') end
  redis.call('HSET', ck, 'wver', ARGV[8])
  redis.call('HDEL', ck, 'due_at', 'waiting_for')
  unqueue(id, camp)
  record(id, cur, 'queued', 'planner', ARGV[7])
  queue_ready(id, cid, camp, tonumber(redis.call('HGET', ck, 'seq')))
  return {'queued'}
end
if action == 'wait' then
  redis.call('HSET', ck, 'due_at', ARGV[4], 'waiting_for', ARGV[5])
  schedule(id, camp, tonumber(ARGV[4]))
  return {'waiting'}
end
redis.call('HSET', ck, 'reason', cjson.decode(ARGV[7]).reason, 'failure_kind', 'permanent')
redis.call('HDEL', ck, 'due_at', 'waiting_for')
unqueue(id, camp)
record(id, cur, ARGV[5], 'planner', ARGV[7])
return {'ended'}
"""
)

# Settings of a campaign. ARGV: prefix, campaign, settings_json, hours '1'|'', max_inflight|'', rate|'', weight,
# retry_json, breaker_json, retention_s, window_changed '1'|''. Returns {state, wver}.
CAMPAIGN_PUT = (
    _PRELUDE
    + """
local camp = p .. ':campaign:' .. ARGV[2]
redis.call('HSET', camp, 'settings', ARGV[3], 'weight', ARGV[7], 'retry', ARGV[8], 'breaker', ARGV[9],
  'retention_s', ARGV[10])
local optional = {hours=ARGV[4], max_inflight=ARGV[5], rate=ARGV[6]}
for k, v in pairs(optional) do
  if v == '' then redis.call('HDEL', camp, k) else redis.call('HSET', camp, k, v) end
end
if ARGV[11] == '1' then redis.call('HINCRBY', camp, 'wver', 1) end
redis.call('HSETNX', camp, 'created_at', now)
redis.call('ZADD', p .. ':campaigns', now, ARGV[2])
redis.call('PERSIST', camp)
refresh_expiry(camp)
return {redis.call('HGET', camp, 'state') or 'active', redis.call('HGET', camp, 'wver') or '0'}
"""
)

# Pause, resume or cancel a campaign. ARGV: prefix, campaign, action, reason. Returns {outcome, state before,
# paused_by before}: outcome 'changed' | 'unchanged' | 'canceled' (a canceled campaign stays canceled) | 'missing'.
CAMPAIGN_CONTROL = (
    _PRELUDE
    + """
local cid = ARGV[2]
local camp = p .. ':campaign:' .. cid
if redis.call('EXISTS', camp) == 0 then return {'missing'} end
local f = redis.call('HMGET', camp, 'state', 'paused_by')
local state = f[1] or 'active'
local by = f[2] or ''
if state == 'canceled' then return {'canceled', state, by} end
local action = ARGV[3]
if action == 'pause' then
  if state == 'paused' then return {'unchanged', state, by} end
  redis.call('HSET', camp, 'state', 'paused', 'paused_by', 'api', 'paused_reason', ARGV[4], 'paused_at', now)
  redis.call('ZREM', p .. ':campaigns:ready', cid)
  return {'changed', state, by}
end
if action == 'resume' then
  if state ~= 'paused' then return {'unchanged', state, by} end
  redis.call('HSET', camp, 'state', 'active', 'resumed_at', now)
  redis.call('HDEL', camp, 'paused_by', 'paused_reason', 'paused_at')
  redis.call('DEL', camp .. ':recent')
  if redis.call('ZCARD', camp .. ':queued') > 0 then ready_join(cid, camp) end
  return {'changed', state, by}
end
redis.call('HSET', camp, 'state', 'canceled', 'canceled_at', now, 'cancel_reason', ARGV[4])
redis.call('ZREM', p .. ':campaigns:ready', cid)
redis.call('SADD', p .. ':campaigns:canceling', cid)
return {'changed', state, by}
"""
)

# End up to ARGV[3] queued or scheduled calls of a canceled campaign as `canceled` (results delivered as for any
# outcome). ARGV: prefix, campaign, limit. Returns {ended, left}; the campaign leaves `canceling` when none is left.
CANCEL_CHUNK = (
    _PRELUDE
    + """
local cid = ARGV[2]
local camp = p .. ':campaign:' .. cid
local limit = tonumber(ARGV[3])
local ids = redis.call('ZRANGE', camp .. ':queued', 0, limit - 1)
if #ids < limit then
  for _, id in ipairs(redis.call('ZRANGE', camp .. ':scheduled', 0, limit - #ids - 1)) do ids[#ids + 1] = id end
end
local ended = 0
for _, id in ipairs(ids) do
  local ck = p .. ':call:' .. id
  local cur = redis.call('HGET', ck, 'status')
  unqueue(id, camp)
  if cur == 'queued' or cur == 'scheduled' then
    redis.call('HSET', ck, 'reason', 'campaign canceled')
    redis.call('HDEL', ck, 'due_at', 'waiting_for')
    record(id, cur, 'canceled', 'api', '{"reason": "campaign canceled"}')
    ended = ended + 1
  end
end
local left = redis.call('ZCARD', camp .. ':queued') + redis.call('ZCARD', camp .. ':scheduled')
if left == 0 then redis.call('SREM', p .. ':campaigns:canceling', cid) end
return {ended, left}
"""
)

# Campaigns whose keys expired leave the index by activity (CampaignStore.forget_expired), each only if its hash is
# still gone now: the sweep found them gone a moment before, and a new call may have brought one back since (the
# calls after it in the same second would not index it again: ENQUEUE's `seen_s`). ARGV: prefix, campaign ids.
# Returns how many left the index.
FORGET_GONE = """
local p = ARGV[1]
local gone = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', p .. ':campaign:' .. ARGV[i]) == 0 then
    gone = gone + redis.call('ZREM', p .. ':campaigns', ARGV[i])
  end
end
return gone
"""

# Calls queued before campaigns existed sit only in `queued`: put them in their campaign's ready queue so the
# claim finds them. ARGV: prefix, offset, count. Returns how many were looked at.
ADOPT_QUEUED = (
    _PRELUDE
    + """
local entries = redis.call('ZRANGE', p .. ':queued', tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1,
  'WITHSCORES')
for i = 1, #entries, 2 do
  local id = entries[i]
  local cid, camp = campaign_of(p .. ':call:' .. id)
  if camp and not redis.call('ZSCORE', camp .. ':queued', id) then
    redis.call('ZADD', camp .. ':queued', entries[i + 1], id)
    ready_join(cid, camp)
  end
end
return #entries / 2
"""
)
