"""Lua scripts: each multi-key change of a call happens in one atomic step, so no crash leaves it half-written.

All scripts take the key prefix as ARGV[1] and build keys the same way store/keys.py does; they read the clock
with Redis TIME so every instance shares one clock. (Keys built inside scripts: a single Redis or Memorystore
primary, not Redis Cluster.)

Campaigns live in the same steps: `record` keeps each campaign's counts, and when an attempt ends it takes the
campaign's decisions atomically with the outcome (`on_final`: outcome per attempt, circuit breaker, redial).
Which campaign's call is dialled next is `choose_next`, kept apart from the CLAIM_FULL script's limits. The scripts
that only campaigns use are in campaign_scripts.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from callqueue.campaigns.models import BreakerSettings
from callqueue.campaigns.rules import (
    BREAKER_FAILURES,
    OUT_OF_CREDITS_CODE,
    PERMANENT_FAILURE_KIND,
    PERMANENT_HANGUP_CODES,
    RETRYABLE,
)
from callqueue.metrics.tally import TALLY_FINAL_LUA
from callqueue.settings import PLAIN_BY_NAME
from callqueue.states import IN_FLIGHT, RANK
from callqueue.store.attempts import CALL_FIELDS
from callqueue.store.claim_script import CLAIMED_REPLY
from callqueue.store.keys import RECENT_CALLS_KEPT, RECENT_TRIM_SLACK

CLAIM_SCAN = 16  # campaigns looked at per claim, in turn order
CLAIM_SKIP = 20  # calls one claim may set aside in a campaign (canceled, out of hours, suppressed) before moving on
# Calls accepted before CALL_RETENTION existed carry no `retention_s` field: they are kept for the default.
_RETENTION_DEFAULT_S = int(PLAIN_BY_NAME["CALL_RETENTION"].default or "86400")
# A campaign hash recreated by a late outcome (an `unknown` call settling after its campaign expired) has no
# `retention_s`: it expires after the default instead of living on.
_CAMPAIGN_RETENTION_DEFAULT_S = int(PLAIN_BY_NAME["CAMPAIGN_RETENTION"].default or "604800")


def _lua_table(entries: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(entries.items())) + "}"


def _lua_set(values: Iterable[str]) -> str:
    return "{" + ", ".join(f'["{v}"]=true' for v in sorted(values)) + "}"


_BREAKER = BreakerSettings()

# The state machine of states.py and the campaign rules of campaigns/rules.py, compiled into Lua.
_PRELUDE = f"""
local RANK = {_lua_table({s.value: str(r) for s, r in RANK.items()})}
local IN_FLIGHT = {_lua_table({s.value: "true" for s in IN_FLIGHT})}
local CALL_FIELD = {_lua_set(CALL_FIELDS)}
local RETRYABLE = {_lua_set(s.value for s in RETRYABLE)}
local PERMANENT_CODE = {_lua_set(PERMANENT_HANGUP_CODES)}
local BREAKER_FAIL = {_lua_set(s.value for s in BREAKER_FAILURES)}
local BREAKER_DEFAULT = {{enabled=true, window={_BREAKER.window}, min_attempts={_BREAKER.min_attempts}, \
failure_ratio={_BREAKER.failure_ratio}}}
local CLAIM_SCAN = {CLAIM_SCAN}
local CLAIM_SKIP = {CLAIM_SKIP}
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local NOTES = {{}}  -- what a step decided beyond its result (breaker trips, redials), returned to the caller

local function may(cur, new)
  if RANK[new] == nil then return false end
  if RANK[cur] == 10 then return false end
  if cur == 'unknown' then return RANK[new] == 10 end
  return RANK[new] > RANK[cur]
end
{TALLY_FINAL_LUA}
-- Attempt ids: the call id for attempt 1, `{{call_id}}.{{n}}` for attempt n >= 2 (store/attempts.py).
local function split_id(aid)
  local base, n = string.match(aid, '^(.+)%.(%d+)$')
  if base and tonumber(n) >= 2 then return base, tonumber(n) end
  return aid, 1
end
local function attempt_no(ck) return tonumber(redis.call('HGET', ck, 'attempt') or '1') end
-- Fencing: every claim of a call (a worker's CLAIM, the reconciler taking over a lease that ran out) takes the next
-- `lease` token; a write made for a claim names its token, and one that is no longer the call's current token is
-- refused before anything is written. Returns the current token when `fence` is stale, nil when the write may go
-- ahead ('' means the caller holds no claim: the tracker, callbacks).
local function stale_fence(ck, fence)
  if fence == nil or fence == '' then return nil end
  local held = redis.call('HGET', ck, 'lease') or '0'
  if held ~= fence then return held end
  return nil
end
local function attempt_id(id, n)
  if n <= 1 then return id end
  return id .. '.' .. n
end
-- The call's campaign; `counted` is false for a call accepted before campaigns existed (no `wver` field): it is
-- queued in its campaign but kept out of the campaign's counts, breaker and redials.
local function campaign_of(ck)
  local f = redis.call('HMGET', ck, 'campaign_id', 'wver')
  if not f[1] then return nil, nil, false end
  return f[1], p .. ':campaign:' .. f[1], f[2] ~= false
end

-- Every key of one call expires together: the record, its history, its ended attempts, the callbacks it took, and
-- the keys that point at it (Idempotency-Key or bulk item key, Plivo's request and call uuids of every attempt).
-- Only once the call is final (record below): a live call, or one whose next attempt is scheduled, never expires.
local function call_keys(id)
  local ck = p .. ':call:' .. id
  local f = redis.call('HMGET', ck, 'idempotency_key', 'campaign_id', 'item_key', 'request_uuid', 'call_uuid')
  local keys = {{ck, ck .. ':history', ck .. ':attempts', ck .. ':callbacks'}}
  if f[1] then keys[#keys + 1] = p .. ':idem:' .. f[1] end
  if f[2] and f[3] then keys[#keys + 1] = p .. ':idem-item:' .. f[2] .. '/' .. f[3] end
  if f[4] then keys[#keys + 1] = p .. ':req:' .. f[4] end
  if f[5] then keys[#keys + 1] = p .. ':cuid:' .. f[5] end
  for _, raw in ipairs(redis.call('LRANGE', ck .. ':attempts', 0, -1)) do
    local ok, snap = pcall(cjson.decode, raw)
    local sf = ok and type(snap) == 'table' and type(snap.fields) == 'table' and snap.fields or {{}}
    if type(sf.request_uuid) == 'string' then keys[#keys + 1] = p .. ':req:' .. sf.request_uuid end
    if type(sf.call_uuid) == 'string' then keys[#keys + 1] = p .. ':cuid:' .. sf.call_uuid end
  end
  return keys
end
local function expire_call(id, seconds)
  for _, k in ipairs(call_keys(id)) do redis.call('EXPIRE', k, seconds) end
end
-- A redial brings a call back to life: none of its own keys expires while its next attempt waits (the uuid
-- indexes of ended attempts keep their expiry: only late callbacks of those attempts use them).
local function keep_call(id)
  local ck = p .. ':call:' .. id
  local f = redis.call('HMGET', ck, 'idempotency_key', 'campaign_id', 'item_key')
  local keys = {{ck, ck .. ':history', ck .. ':attempts', ck .. ':callbacks'}}
  if f[1] then keys[#keys + 1] = p .. ':idem:' .. f[1] end
  if f[2] and f[3] then keys[#keys + 1] = p .. ':idem-item:' .. f[2] .. '/' .. f[3] end
  for _, k in ipairs(keys) do redis.call('PERSIST', k) end
end
local function retention(id)
  return tonumber(redis.call('HGET', p .. ':call:' .. id, 'retention_s')) or {_RETENTION_DEFAULT_S}
end
-- Calls waiting to be dialled: ready (`queued`) and `scheduled` (for calling hours, a not_before, or a redial).
-- What MAX_QUEUED_CALLS bounds.
local function waiting()
  return redis.call('ZCARD', p .. ':queued') + redis.call('ZCARD', p .. ':scheduled')
end

-- Ready calls: per campaign by acceptance order, and the campaigns with ready calls by turn (choose_next).
local function ready_join(cid, camp)
  local state = redis.call('HGET', camp, 'state')
  if state == 'paused' or state == 'canceled' then return end
  local vtime = tonumber(redis.call('GET', p .. ':campaigns:vtime') or '0')
  redis.call('ZADD', p .. ':campaigns:ready', 'NX', vtime, cid)
end
local function queue_ready(id, cid, camp, seq)
  redis.call('ZADD', p .. ':queued', seq, id)
  if camp then
    redis.call('ZADD', camp .. ':queued', seq, id)
    ready_join(cid, camp)
  end
end
local function schedule(id, camp, score)
  redis.call('ZADD', p .. ':scheduled', score, id)
  if camp then redis.call('ZADD', camp .. ':scheduled', score, id) end
end
local function unqueue(id, camp)
  redis.call('ZREM', p .. ':queued', id)
  redis.call('ZREM', p .. ':scheduled', id)
  if camp then
    redis.call('ZREM', camp .. ':queued', id)
    redis.call('ZREM', camp .. ':scheduled', id)
  end
end
-- A campaign's keys stop expiring when a call joins it (refresh_expiry).
local function campaign_keep(camp)
  redis.call('PERSIST', camp)
  redis.call('PERSIST', camp .. ':recent')
  redis.call('PERSIST', camp .. ':pace')
  redis.call('HDEL', camp, 'expiring')
end
-- Seen now: its score in `campaigns` (the index by activity) and the second it was set, `seen_s` (ENQUEUE moves the
-- score at most once a second).
local function campaign_join(cid, camp, retention)
  redis.call('ZADD', p .. ':campaigns', now, cid)
  redis.call('HSET', camp, 'seen_s', t[1])
  redis.call('HSETNX', camp, 'created_at', now)
  if retention and retention ~= '' then redis.call('HSET', camp, 'retention_s', retention) end
  campaign_keep(camp)
end
-- A campaign with nothing waiting or in flight expires after its retention; a new call brings it back. The
-- `expiring` field says its keys were given an expiry, so ENQUEUE, which reads the campaign's hash anyway, knows
-- without three PERSISTs per call whether there is one to take back (campaign_keep).
local function refresh_expiry(camp)
  local live = redis.call('ZCARD', camp .. ':queued') + redis.call('ZCARD', camp .. ':scheduled')
    + redis.call('ZCARD', camp .. ':inflight')
  local ttl = tonumber(redis.call('HGET', camp, 'retention_s') or '') or {_CAMPAIGN_RETENTION_DEFAULT_S}
  if live == 0 and ttl > 0 then
    redis.call('HSET', camp, 'expiring', '1')
    redis.call('EXPIRE', camp, ttl)
    redis.call('EXPIRE', camp .. ':recent', ttl)
    redis.call('EXPIRE', camp .. ':pace', ttl)
  end
end

local record  -- defined below; on_final and start_retry record the next attempt through it

-- The circuit breaker: the last `window` dialled attempts of the campaign, '1' for a failure.
local function breaker_count(ck, cid, camp, new)
  local raw = redis.call('HGET', camp, 'breaker')
  local b = raw and cjson.decode(raw) or BREAKER_DEFAULT
  if not b.enabled then return end
  local failed = BREAKER_FAIL[new] or redis.call('HGET', ck, 'hangup_cause_code') == '{OUT_OF_CREDITS_CODE}'
  local key = camp .. ':recent'
  redis.call('LPUSH', key, failed and '1' or '0')
  redis.call('LTRIM', key, 0, b.window - 1)
  local state = redis.call('HGET', camp, 'state')
  if state == 'paused' or state == 'canceled' then return end
  local recent = redis.call('LRANGE', key, 0, -1)
  if #recent < b.min_attempts then return end
  local failures = 0
  for _, v in ipairs(recent) do
    if v == '1' then failures = failures + 1 end
  end
  if failures / #recent < b.failure_ratio - 1e-9 then return end
  local last = redis.call('HGET', ck, 'reason') or redis.call('HGET', ck, 'hangup_cause') or ''
  local reason = string.format('circuit breaker: %d of the last %d dialled attempts failed (latest: %s %s)',
    failures, #recent, new, last)
  redis.call('HSET', camp, 'state', 'paused', 'paused_by', 'breaker', 'paused_reason', reason, 'paused_at', now,
    'tripped_at', now)
  redis.call('ZREM', p .. ':campaigns:ready', cid)
  table.insert(NOTES, 'breaker|' .. cid .. '|' .. reason)
end

local function redials(ck, camp, new, n)
  if not RETRYABLE[new] then return false end
  if redis.call('HGET', camp, 'state') == 'canceled' then return false end
  local raw = redis.call('HGET', ck, 'retry') or redis.call('HGET', camp, 'retry')
  if not raw then return false end
  local policy = cjson.decode(raw)
  if n >= (tonumber(policy.max_attempts) or 1) then return false end
  local listed = false
  for _, outcome in ipairs(policy.on or {{}}) do
    if outcome == new then listed = true end
  end
  if not listed then return false end
  if new == 'failed' then
    local f = redis.call('HMGET', ck, 'failure_kind', 'hangup_cause_code')
    if f[1] == '{PERMANENT_FAILURE_KIND}' or (f[2] and PERMANENT_CODE[f[2]]) then return false end
  end
  return true
end

-- The next attempt: the ended one's own fields become its snapshot; the call waits, `scheduled`, for the planner
-- to set when it is due (the retry's wait, then its calling hours).
local function start_retry(id, ck, camp, outcome, n)
  local all = redis.call('HGETALL', ck)
  local moved, gone = {{}}, {{}}
  for i = 1, #all, 2 do
    local k = all[i]
    if not CALL_FIELD[k] and string.sub(k, 1, 13) ~= 'trk_delivery_' and string.sub(k, 1, 15) ~= 'trk_dead_letter' then
      moved[k] = all[i + 1]
      gone[#gone + 1] = k
    end
  end
  local snapshot = {{attempt=n, attempt_id=attempt_id(id, n), outcome=outcome, ended_at=now, fields=moved}}
  redis.call('RPUSH', ck .. ':attempts', cjson.encode(snapshot))
  if #gone > 0 then redis.call('HDEL', ck, unpack(gone)) end
  redis.call('HDEL', ck, 'due_at', 'window_close')
  redis.call('HSET', ck, 'attempt', n + 1, 'starts_before', redis.call('HGET', ck, 'attempts') or '0',
    'retry_after', outcome, 'waiting_for', 'retry')
  keep_call(id)
  record(id, outcome, 'scheduled', 'retry-policy', cjson.encode({{after=outcome, attempt=n + 1}}))
  schedule(id, camp, 0)
  table.insert(NOTES, 'redial|' .. (n + 1))
end

-- An attempt ended: its outcome counts for its campaign, feeds the breaker, and may be redialled.
local function on_final(id, ck, cid, camp, cur, new, n)
  if cur == 'unknown' then redis.call('HINCRBY', camp, 'o:' .. n .. ':unknown', -1) end
  redis.call('HINCRBY', camp, 'o:' .. n .. ':' .. new, 1)
  if IN_FLIGHT[cur] then breaker_count(ck, cid, camp, new) end
  if (IN_FLIGHT[cur] or cur == 'unknown') and redials(ck, camp, new, n) then
    start_retry(id, ck, camp, new, n)
  end
  refresh_expiry(camp)
end

record = function(id, cur, new, source, detail_json)
  local ck = p .. ':call:' .. id
  -- One read: the attempt (attempt_no) and the campaign, if the call is counted in it (campaign_of).
  local f = redis.call('HMGET', ck, 'attempt', 'campaign_id', 'wver')
  local n = tonumber(f[1] or '1')
  local cid, camp = f[2], nil
  if cid and f[3] then camp = p .. ':campaign:' .. cid end
  redis.call('HSET', ck, 'status', new, 'updated_at', now)
  local entry = {{at=now, status=new, source=source, detail=cjson.decode(detail_json)}}
  if n > 1 then entry.attempt = n end
  -- Appended after the first entry, which the record holds (`accepted_as`, records.py): the first change creates
  -- the list.
  redis.call('RPUSH', ck .. ':history', cjson.encode(entry))
  if cur and cur ~= '' then redis.call('HINCRBY', p .. ':counts', cur, -1) end
  redis.call('HINCRBY', p .. ':counts', new, 1)
  if camp then
    if cur and cur ~= '' then redis.call('HINCRBY', camp, 'n:' .. cur, -1) end
    redis.call('HINCRBY', camp, 'n:' .. new, 1)
  end
  if IN_FLIGHT[new] then
    redis.call('ZADD', p .. ':inflight', 'NX', now, id)
    if camp then redis.call('ZADD', camp .. ':inflight', 'NX', now, id) end
  else
    redis.call('ZREM', p .. ':inflight', id)
    if camp then redis.call('ZREM', camp .. ':inflight', id) end
  end
  if RANK[new] >= 9 then
    redis.call('ZREM', p .. ':tracking', id)
    redis.call('ZREM', p .. ':dispatching', id)
    local member = attempt_id(id, n)
    if cur == 'unknown' then redis.call('ZREM', p .. ':outbox', member .. ':unknown') end
    redis.call('ZADD', p .. ':outbox', now, member .. ':' .. new)
    -- Tallied before the keys get their expiry (the tally reads the call's campaign and dial time).
    tally_final(id, new)
    if camp then on_final(id, ck, cid, camp, cur, new, n) end
    -- Final unless on_final scheduled the next attempt: then the call lives on (keep_call).
    if redis.call('HGET', ck, 'status') == new then expire_call(id, retention(id)) end
  end
end

-- Uuid lookups point at the attempt that owns the uuid, so a record found by destination and time is never
-- taken for another attempt of the same call.
local function set_fields(id, fields_json, overwrite)
  local ck = p .. ':call:' .. id
  local aid = attempt_id(id, attempt_no(ck))
  for k, v in pairs(cjson.decode(fields_json)) do
    if v ~= cjson.null and v ~= '' then
      if overwrite then redis.call('HSET', ck, k, tostring(v)) else redis.call('HSETNX', ck, k, tostring(v)) end
      -- An index outlives neither its call (once finished) nor 7 days.
      local ttl = redis.call('PTTL', ck)
      if ttl <= 0 then ttl = 604800000 end
      if k == 'call_uuid' then redis.call('SET', p .. ':cuid:' .. v, aid, 'PX', ttl) end
      if k == 'request_uuid' then redis.call('SET', p .. ':req:' .. v, aid, 'PX', ttl) end
    end
  end
end

-- The pace sets (the global one, and each campaign's) hold every start (`{{call id}}:{{start request}}`) by its time.
-- Every reader counts a score range, so a set is trimmed only to bound its size, when a start is added to it, not
-- on every look.
local function pace_wait(rate)
  if redis.call('ZCOUNT', p .. ':pace', now - 999, '+inf') >= rate then
    local first = redis.call('ZRANGEBYSCORE', p .. ':pace', now - 999, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return math.max(1, tonumber(first[2]) + 1000 - now)
  end
  return 0
end

-- A start goes into the global pace and its call's campaign's (`camp`, nil for a call without one). Both are trimmed
-- to the last minute together, once a second per campaign: `trimmed` is the campaign's `pace_trimmed_s` (false
-- when unset) when it is the campaign in turn, whose hash the claim read; nil otherwise (a start retry, a call
-- queued in another campaign than its own, or one without a campaign), and then they are trimmed every time. So
-- every start is added where a trim ran in the same second of Redis time: once a start is added, a pace set holds
-- none older than 61 s (about 61 × the rate members). claim_script.CLAIM follows the same rule.
local function add_starts(start_id, camp, trimmed)
  redis.call('ZADD', p .. ':pace', now, start_id)
  if camp then redis.call('ZADD', camp .. ':pace', now, start_id) end
  if trimmed == t[1] then return end
  redis.call('ZREMRANGEBYSCORE', p .. ':pace', '-inf', now - 60000)
  if camp then redis.call('ZREMRANGEBYSCORE', camp .. ':pace', '-inf', now - 60000) end
  if trimmed ~= nil then redis.call('HSET', camp, 'pace_trimmed_s', t[1]) end
end
"""
# ARGV: prefix, call_id, idempotency_key|'', fingerprint, retention_s, phone, campaign, config_json, max_queued,
#       traceparent|'', options_json, campaign_retention_s|''
# options_json: {"fields": {zones, zone_source, not_before, retry, …}, "plan": bool, "due": ms}, '{}' without.
# Admission and insertion in one step: with max_queued calls waiting (queued or scheduled), nothing is written
# ({'full', waiting}). A replay of a known Idempotency-Key is answered even then. The key lives as long as its call
# (see expire_call). A call goes `queued` unless its campaign has calling hours or it has its own not_before or time
# zone: then `scheduled`, for the planner (campaigns/planner.py). A canceled campaign takes no new calls. The id
# goes on the `recent` list (the operator page's latest calls): the list holds bare ids, so it keeps no call alive,
# and its reader skips an id whose call has expired.
# The hot path, so it stands alone (no _PRELUDE: building its tables and functions on every call cost more than the
# writes) and does only what changes something for a new call; what Redis spends per script is mostly per command
# called and per value converted, so:
# - the call is one key, its hash, written by one HSET: its first history entry is the record's created_at and
#   accepted_as (records.py), so there is no history list until it changes; `attempts` and `updated_at` are left to
#   the first change (readers default them: 0, created_at); the fingerprint is kept only with an Idempotency-Key (the
#   one thing it is for);
# - `record` and `queue_ready` are inlined, as they act on a call just created (attempt 1, counted, not in flight);
# - the campaign's `created_at`/`retention_s` are written only when they change, its keys are PERSISTed only when
#   refresh_expiry gave them an expiry (`expiring`), and `recent` is trimmed back to RECENT_CALLS_KEPT once it grew
#   RECENT_TRIM_SLACK past it (its reader reads the head), not on every call;
# - the campaign's total is the sum of its `n:{status}` (campaigns/store.py): no `total` field is written beside
#   them (revisions up to 02f958d read one: rolled back to, they show short totals, docs/runbook.md); its score in
#   `campaigns` (the index by activity, listed newest first) moves at most once a second (`seen_s`, read with the
#   rest of the campaign's hash); a campaign already in the rotation is only looked up (ZSCORE), not re-added;
# - the campaign's retention is an argument of its own, so a call without options of its own decodes no JSON;
# - numbers are passed to Redis as strings made once (a Lua number is formatted again for every command it is
#   passed to).
ENQUEUE = f"""
local p = ARGV[1]
local id = ARGV[2]
local idem = ARGV[3]
if idem ~= '' then
  local existing = redis.call('GET', p .. ':idem:' .. idem)
  if existing then return {{'replay', existing}} end
end
local cid = ARGV[7]
local camp = p .. ':campaign:' .. cid
local c = redis.call('HMGET', camp, 'state', 'hours', 'wver', 'created_at', 'retention_s', 'expiring', 'seen_s')
if c[1] == 'canceled' then return {{'campaign_canceled'}} end
local held = redis.call('ZCARD', p .. ':queued') + redis.call('ZCARD', p .. ':scheduled')
if held >= tonumber(ARGV[9]) then return {{'full', tostring(held)}} end
local opts = ARGV[11] == '{{}}' and {{}} or cjson.decode(ARGV[11])
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', t[2] / 1000)  -- ms, as the prelude's `now`
local seq = string.format('%d', redis.call('INCR', p .. ':seq'))
local ck = p .. ':call:' .. id
local planned = c[2] == '1' or opts.plan
local status = planned and 'scheduled' or 'queued'
local rec = {{'call_id', id, 'phone_number', ARGV[6], 'campaign_id', cid, 'call_config', ARGV[8], 'created_at', now,
  'seq', seq, 'retention_s', ARGV[5], 'wver', c[3] or '0', 'status', status, 'accepted_as', status}}
for k, v in pairs(opts.fields or {{}}) do
  rec[#rec + 1] = k
  rec[#rec + 1] = tostring(v)
end
if idem ~= '' then
  rec[#rec + 1] = 'idempotency_key'
  rec[#rec + 1] = idem
  rec[#rec + 1] = 'fingerprint'
  rec[#rec + 1] = ARGV[4]
end
if ARGV[10] ~= '' then
  rec[#rec + 1] = 'traceparent'
  rec[#rec + 1] = ARGV[10]
end
if planned then
  rec[#rec + 1] = 'waiting_for'
  rec[#rec + 1] = 'planning'
end
redis.call('HSET', ck, unpack(rec))
if idem ~= '' then redis.call('SET', p .. ':idem:' .. idem, id) end
if redis.call('LPUSH', p .. ':recent', id) > {RECENT_CALLS_KEPT + RECENT_TRIM_SLACK} then
  redis.call('LTRIM', p .. ':recent', '0', '{RECENT_CALLS_KEPT - 1}')
end
-- The campaign (campaign_join): seen now (once a second: `seen_s`), created once, its retention as given, none of
-- its keys expiring.
local camp_fields = {{}}
if c[7] ~= t[1] then
  redis.call('ZADD', p .. ':campaigns', now, cid)
  camp_fields = {{'seen_s', t[1]}}
end
if not c[4] then
  camp_fields[#camp_fields + 1] = 'created_at'
  camp_fields[#camp_fields + 1] = now
end
local retention = ARGV[12]
if retention ~= '' and retention ~= c[5] then
  camp_fields[#camp_fields + 1] = 'retention_s'
  camp_fields[#camp_fields + 1] = retention
end
if #camp_fields > 0 then redis.call('HSET', camp, unpack(camp_fields)) end
if c[6] then
  redis.call('PERSIST', camp)
  redis.call('PERSIST', camp .. ':recent')
  redis.call('PERSIST', camp .. ':pace')
  redis.call('HDEL', camp, 'expiring')
end
-- Its first status (record): the queue's and the campaign's counts (the history entry is `accepted_as`; the
-- campaign's total is the sum of its `n:` counts).
redis.call('HINCRBY', p .. ':counts', status, '1')
redis.call('HINCRBY', camp, 'n:' .. status, '1')
if planned then
  -- schedule: the planner sets when it is due.
  local due = string.format('%d', tonumber(opts.due or 0))
  redis.call('ZADD', p .. ':scheduled', due, id)
  redis.call('ZADD', camp .. ':scheduled', due, id)
  return {{'created', id, 'scheduled'}}
end
-- queue_ready: in acceptance order, and the campaign joins the rotation unless paused or canceled (ready_join);
-- one read when it is already in it (the usual case), as ZADD NX would leave it.
redis.call('ZADD', p .. ':queued', seq, id)
redis.call('ZADD', camp .. ':queued', seq, id)
if c[1] ~= 'paused' and not redis.call('ZSCORE', p .. ':campaigns:ready', cid) then
  redis.call('ZADD', p .. ':campaigns:ready', 'NX', redis.call('GET', p .. ':campaigns:vtime') or '0', cid)
end
return {{'created', id, 'queued'}}
"""

# Which call is dialled next, across campaigns (docs/campaigns.md, "Fair sharing"): weighted round robin by
# stride scheduling. Each campaign with ready calls has a pass (score in campaigns:ready); the lowest pass that may
# dial now goes, and its pass grows by 1/weight. A campaign joining (or rejoining) starts at the current virtual
# time, so it is served at once and then in turn, however long the others' queues are. A campaign at its own
# concurrency cap or rate share loses this turn (its pass moves to one stride past the virtual time, never more);
# a paused or canceled one leaves the rotation. Within a campaign, calls go in acceptance order. A call found with
# its calling hours closed (or its campaign's hours changed since it was planned) goes back to the planner; a
# suppressed number ends `suppressed` here, atomically with the claim. Returns id, verdict ('claimed',
# 'suppressed'), the campaign's key and its `pace_trimmed_s` (add_starts), or nil, 'empty' | 'blocked'.
CHOOSE_NEXT = """
local function campaign_busy(camp, c)
  if c[2] and redis.call('ZCARD', camp .. ':inflight') >= tonumber(c[2]) then return true end
  if c[3] and redis.call('ZCOUNT', camp .. ':pace', now - 999, '+inf') >= tonumber(c[3]) then return true end
  return false
end

local function back_to_planning(id, ck, camp)
  redis.call('HDEL', ck, 'window_close')
  redis.call('HSET', ck, 'waiting_for', 'planning')
  record(id, 'queued', 'scheduled', 'dispatcher',
    '{"reason": "its calling hours closed, or its campaign changed them, before its turn: planned again"}')
  schedule(id, camp, 0)
end

local function suppress(id, ck, phone)
  local raw = redis.call('HGET', p .. ':suppressed', phone)
  local ok, info = pcall(cjson.decode, raw)
  local why = (ok and type(info) == 'table' and info.reason) or nil
  local reason = 'number is on the suppression list' .. ((why and why ~= cjson.null) and (': ' .. why) or '')
  redis.call('HSET', ck, 'reason', reason)
  record(id, 'queued', 'suppressed', 'dispatcher', cjson.encode({reason=reason}))
end

local function choose_next(clock)
  local ready = p .. ':campaigns:ready'
  local vtime = tonumber(redis.call('GET', p .. ':campaigns:vtime') or '0')
  local cands = redis.call('ZRANGE', ready, 0, CLAIM_SCAN - 1, 'WITHSCORES')
  local blocked = false
  for i = 1, #cands, 2 do
    local cid, pass = cands[i], tonumber(cands[i + 1])
    local camp = p .. ':campaign:' .. cid
    local c = redis.call('HMGET', camp, 'state', 'max_inflight', 'rate', 'weight', 'wver', 'pace_trimmed_s')
    local stride = 1 / (tonumber(c[4]) or 1)
    if c[1] == 'paused' or c[1] == 'canceled' then
      redis.call('ZREM', ready, cid)
    elseif campaign_busy(camp, c) then
      blocked = true
      redis.call('ZADD', ready, 'GT', vtime + stride, cid)
    else
      for _ = 1, CLAIM_SKIP do
        local head = redis.call('ZRANGE', camp .. ':queued', 0, 0)
        if #head == 0 then break end
        local id = head[1]
        redis.call('ZREM', camp .. ':queued', id)
        redis.call('ZREM', p .. ':queued', id)
        local ck = p .. ':call:' .. id
        local f = redis.call('HMGET', ck, 'status', 'phone_number', 'window_close', 'wver')
        if f[1] == 'queued' then
          local verdict = nil
          if (f[3] and tonumber(f[3]) <= clock) or (f[4] or '0') ~= (c[5] or '0') then
            back_to_planning(id, ck, camp)
          elseif f[2] and redis.call('HEXISTS', p .. ':suppressed', f[2]) == 1 then
            suppress(id, ck, f[2])
            verdict = 'suppressed'
          else
            verdict = 'claimed'
          end
          if verdict then
            redis.call('SET', p .. ':campaigns:vtime', tostring(math.max(vtime, pass)))
            if redis.call('ZCARD', camp .. ':queued') > 0 then
              redis.call('ZADD', ready, 'XX', pass + stride, cid)
            else
              redis.call('ZREM', ready, cid)
            end
            return id, verdict, camp, c[6]
          end
        end
      end
      if redis.call('ZCARD', camp .. ':queued') == 0 then redis.call('ZREM', ready, cid) end
    end
  end
  return nil, blocked and 'blocked' or 'empty'
end
"""

# The claim with all the rules (every campaign in turn, calls planned again, suppressed or skipped): what
# CallStore.claim runs when claim_script.CLAIM, its plain-case fast path, answers `slow`. The same ARGV and reply.
# ARGV: prefix, rate, max_in_flight, lease_ms, worker_id, clock_ms (the service clock calling hours are read with)
CLAIM_FULL = (
    _PRELUDE
    + CHOOSE_NEXT
    + """
local wait = pace_wait(tonumber(ARGV[2]))
if wait > 0 then return {'wait', tostring(wait)} end
if redis.call('ZCARD', p .. ':inflight') >= tonumber(ARGV[3]) then return {'full'} end
local id, verdict, turn, trimmed = choose_next(tonumber(ARGV[6] or now))
if verdict ~= 'claimed' then return {verdict, id} end
local ck = p .. ':call:' .. id
local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
local token = redis.call('HINCRBY', ck, 'lease', 1)
redis.call('HSET', ck, 'worker', ARGV[5])
record(id, 'queued', 'dispatching', 'dispatcher', cjson.encode({attempt=attempt, worker=ARGV[5], claim=token}))
redis.call('ZADD', p .. ':dispatching', now + tonumber(ARGV[4]), id)
local _, camp = campaign_of(ck)
if camp == turn then
  add_starts(id .. ':' .. attempt, camp, trimmed)
else
  add_starts(id .. ':' .. attempt, camp, nil)
end
"""
    + CLAIMED_REPLY
)

# A further start attempt of a call the worker already holds. ARGV: prefix, rate, call_id, lease_ms, fence|''
PACE_RETRY = (
    _PRELUDE
    + """
local id = ARGV[3]
local ck = p .. ':call:' .. id
if redis.call('HGET', ck, 'status') ~= 'dispatching' then return {'lost'} end
local held = stale_fence(ck, ARGV[5])
if held then return {'fenced', held} end
local wait = pace_wait(tonumber(ARGV[2]))
if wait > 0 then return {'wait', tostring(wait)} end
local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
redis.call('ZADD', p .. ':dispatching', 'XX', now + tonumber(ARGV[4]), id)
local _, camp = campaign_of(ck)
add_starts(id .. ':' .. attempt, camp, nil)
return {'ok', tostring(attempt)}
"""
)

# ARGV: prefix, attempt_id, new_status, source, detail_json, fields_json, fence|''. An event of another attempt than
# the call's current one is `stale` and changes nothing; so is a write for a claim that is no longer the call's
# (`fenced`, with the current token). Returns the campaign's decisions (NOTES) after the status.
TRANSITION = (
    _PRELUDE
    + """
local id, n = split_id(ARGV[2])
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if not cur then return {'missing'} end
if attempt_no(ck) ~= n then return {'stale', cur} end
local held = stale_fence(ck, ARGV[7])
if held then return {'fenced', cur, held} end
if may(cur, ARGV[3]) then
  set_fields(id, ARGV[6], true)
  record(id, cur, ARGV[3], ARGV[4], ARGV[5])
  return {'changed', cur, unpack(NOTES)}
end
set_fields(id, ARGV[6], false)
return {'unchanged', cur}
"""
)

# The agent accepted the start. ARGV: prefix, attempt_id, request_uuid, detail_json, first_check_delay_ms, fence|''.
# An attempt that already ended (a busy callback can outrun the agent's answer) and was redialled is `stale`:
# the next attempt is not marked dialled by the previous one's answer. A worker whose claim was taken over is
# `fenced`: its answer belongs to a claim that is no longer the call's.
MARK_DISPATCHED = (
    _PRELUDE
    + """
local id, n = split_id(ARGV[2])
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if not cur then return {'missing'} end
if attempt_no(ck) ~= n then return {'stale', cur} end
local held = stale_fence(ck, ARGV[6])
if held then return {'fenced', cur, held} end
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

# The agent certainly did not start the call: back in line at its original place.
# ARGV: prefix, call_id, detail_json, fence|''
REQUEUE = (
    _PRELUDE
    + """
local id = ARGV[2]
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if cur ~= 'dispatching' then return {'skipped', tostring(cur)} end
local held = stale_fence(ck, ARGV[4])
if held then return {'fenced', held} end
redis.call('ZREM', p .. ':dispatching', id)
record(id, cur, 'queued', 'dispatcher', ARGV[3])
local cid, camp = campaign_of(ck)
queue_ready(id, cid, camp, tonumber(redis.call('HGET', ck, 'seq')))
return {'requeued'}
"""
)

# A call not dialled yet (queued or scheduled) is never dialled afterwards. ARGV: prefix, call_id
CANCEL = (
    _PRELUDE
    + """
local id = ARGV[2]
local ck = p .. ':call:' .. id
local cur = redis.call('HGET', ck, 'status')
if not cur then return {'missing'} end
if cur ~= 'queued' and cur ~= 'scheduled' then return {'not_cancelable', cur} end
local _, camp = campaign_of(ck)
unqueue(id, camp)
record(id, cur, 'canceled', 'api', '{"reason": "canceled before dispatch"}')
return {'canceled'}
"""
)

# Leases that ran out: take up to ARGV[3] of them, extending each by ARGV[2] ms. ARGV: prefix, lease_ms, limit.
# (Tracking checks and result deliveries; a dispatch lease is taken over with TAKE_OVER, which also fences.)
CLAIM_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"""

# Dispatch leases that ran out (the worker died, or its start's outcome is unknown): take up to ARGV[3] of them,
# extending each by ARGV[2] ms, each under a new claim token, so the worker that held it can write nothing for it
# from now on. ARGV: prefix, lease_ms, limit. Returns id, token pairs.
TAKE_OVER = (
    _PRELUDE
    + """
local key = p .. ':dispatching'
local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), id)
  local ck = p .. ':call:' .. id
  out[#out + 1] = id
  out[#out + 1] = redis.call('EXISTS', ck) == 1 and tostring(redis.call('HINCRBY', ck, 'lease', 1)) or '0'
end
return out
"""
)

# A worker still busy with its claim keeps its lease (retries, an unknown outcome left to the reconciler), and
# records why, unless another claim took the call over. ARGV: prefix, call_id, lease_ms, fence|'', fields_json
EXTEND_LEASE = (
    _PRELUDE
    + """
local ck = p .. ':call:' .. ARGV[2]
if redis.call('EXISTS', ck) == 0 then return {'missing'} end
local held = stale_fence(ck, ARGV[4])
if held then return {'fenced', held} end
for k, v in pairs(cjson.decode(ARGV[5])) do redis.call('HSET', ck, k, tostring(v)) end
redis.call('ZADD', p .. ':dispatching', 'XX', now + tonumber(ARGV[3]), ARGV[2])
return {'ok'}
"""
)

# Set the next check of a tracked call, unless it reached a final status meanwhile (or its attempt ended and the
# next one waits, `scheduled`: that one is tracked once dialled). An `unknown` call is kept at least its retention
# past its next check: it expires only once reconciliation stops. ARGV: prefix, call_id, delay_ms
RESCHEDULE = (
    _PRELUDE
    + """
local cur = redis.call('HGET', p .. ':call:' .. ARGV[2], 'status')
if not cur or RANK[cur] == 10 or cur == 'scheduled' then return 0 end
redis.call('ZADD', p .. ':tracking', now + tonumber(ARGV[3]), ARGV[2])
if cur == 'unknown' then
  local keep = retention(ARGV[2]) + math.ceil(tonumber(ARGV[3]) / 1000)
  if redis.call('TTL', p .. ':call:' .. ARGV[2]) < keep then expire_call(ARGV[2], keep) end
end
return 1
"""
)

# Keep a finished call (all its keys) at least ARGV[3] more seconds, or its own retention when ARGV[3] is '': while
# its result is still being delivered, and after it is dead-lettered. A call that is not finished (or whose next
# attempt is scheduled) has no expiry and is left alone. ARGV: prefix, call_id, seconds|''
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
# signed request is refused from now on. ARGV: prefix, call_id (not an attempt id: one set per call), digest
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
