"""The claim's hot path: one script that takes the next call and returns what a dispatch worker needs to start it.

A dispatch worker used to CLAIM and then read the record (2 round trips); the claim now answers with the record's
fields itself (`CLAIMED_FIELDS`: what `start_body`, the attempt id and the start-request count use; not the
history or ended attempts, which the worker never reads).

It stands alone, without scripts.py's _PRELUDE: building the prelude's tables and ~40 functions on every run cost
more Redis time than the claim's own writes. So it handles only the plain case, the one almost every claim is: the
campaign first in turn is active and under its limits, and the call at its head is `queued`, inside its calling
hours, planned under the campaign's current hours and not suppressed. Then it makes exactly the writes the full
claim (scripts.CLAIM_FULL: choose_next, then `record`) would make. Anything else (a paused or busy campaign first in
turn, a head call to plan again, suppress or skip) is answered `slow` with nothing changed, and CallStore.claim runs
CLAIM_FULL, which decides it with all the rules. tests/campaigns/test_claim_read.py holds the two to the same writes.

What it does per claim (the plain case): 23 Redis commands. Reads: TIME; ZCOUNT of the global pace's last second
and ZCARD of the calls in flight (the global limits); ZRANGE for the campaign first in turn and HMGET of its settings
(ZCARD of its calls in flight and ZCOUNT of its pace only when it has those limits); ZPOPMIN of its head call, HMGET
of the call, HEXISTS on the suppression list; ZCARD of the campaign's queue. Writes: ZREM from the global queue; SET
of the virtual time with GET (it answers the value it replaced, set back in the rare case that was ahead: the
virtual time never goes back); ZADD of the campaign's next turn (ZREM once its queue is empty); one HSET of the
claim's fields; RPUSH of the history entry; HINCRBY x4 (the queue's and the campaign's counts); ZADD x2 (in flight),
ZADD (the dispatch lease); ZADD of each pace. Once a second per campaign, 3 more: ZREMRANGEBYSCORE of each pace and
HSET of the campaign's `pace_trimmed_s`.

What Redis spends on a script is mostly per command called and per value converted (measured on Redis 7.0, usec
per EVALSHA: ~0.6 per read called, ~0.9 per write; ~0.5 more per Lua number passed to a command, which Redis formats
with %.17g; ~0.8 per tostring of a number; ~0.4 per string built), so beyond the commands themselves it builds
little: numbers go to Redis as strings made once (Redis time as ENQUEUE makes it, a whole campaign pass as Redis
returned it); the history entry is written out rather than cjson.encode'd (the same bytes: readers parse it,
records.py). The pace sets are trimmed to the last minute only to bound their size (every reader counts a time
range): together, when the campaign's `pace_trimmed_s` (read with its settings) is not this second of Redis time,
as CLAIM_FULL does (scripts.add_starts, which states the bound: no start older than 61 s).
"""

from __future__ import annotations

# What a claim returns after ('claimed', call id, token, attempts, now): the record's fields a worker uses, in
# this order (None when the hash lacks the field). CallRecord.from_claim builds the record from them.
CLAIMED_FIELDS = ("phone_number", "campaign_id", "call_config", "attempt", "starts_before", "traceparent", "created_at")
_HMGET = ", ".join(f"'{name}'" for name in CLAIMED_FIELDS)

# ARGV: prefix, rate, max_in_flight, lease_ms, worker_id, clock_ms (the service clock calling hours are read with).
# Returns {'claimed', id, token, attempts, now, CLAIMED_FIELDS...} | {'wait', ms} | {'full'} | {'empty'} | {'slow'}.
CLAIM = f"""
local p = ARGV[1]
local worker = ARGV[5]
local t = redis.call('TIME')
local nows = t[1] .. string.format('%03d', t[2] / 1000)  -- ms, as the prelude's `now`
local now = tonumber(nows)
local clock = tonumber(ARGV[6] or nows)
local recent = string.format('%d', now - 999)  -- the last second
local pace = p .. ':pace'
-- pace_wait: starts in the last second against the global rate.
if redis.call('ZCOUNT', pace, recent, '+inf') >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGEBYSCORE', pace, recent, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return {{'wait', tostring(math.max(1, tonumber(first[2]) + 1000 - now))}}
end
local inflight = p .. ':inflight'
if redis.call('ZCARD', inflight) >= tonumber(ARGV[3]) then return {{'full'}} end
-- choose_next, first campaign in turn only.
local ready = p .. ':campaigns:ready'
local turn = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
if #turn == 0 then return {{'empty'}} end
local cid, pass = turn[1], tonumber(turn[2])
local camp = p .. ':campaign:' .. cid
local c = redis.call('HMGET', camp, 'state', 'max_inflight', 'rate', 'weight', 'wver', 'pace_trimmed_s')
if c[1] == 'paused' or c[1] == 'canceled' then return {{'slow'}} end
if c[2] and redis.call('ZCARD', camp .. ':inflight') >= tonumber(c[2]) then return {{'slow'}} end
if c[3] and redis.call('ZCOUNT', camp .. ':pace', recent, '+inf') >= tonumber(c[3]) then return {{'slow'}} end
local queued = camp .. ':queued'
local head = redis.call('ZPOPMIN', queued)
if #head == 0 then return {{'slow'}} end
local id = head[1]
local ck = p .. ':call:' .. id
local f = redis.call('HMGET', ck, 'status', 'window_close', 'wver', 'attempts', 'lease', {_HMGET})
-- f[6..12]: CLAIMED_FIELDS
if f[1] ~= 'queued' or (f[2] and tonumber(f[2]) <= clock) or (f[3] or '0') ~= (c[5] or '0')
    or (f[6] and redis.call('HEXISTS', p .. ':suppressed', f[6]) == 1) then
  redis.call('ZADD', queued, head[2], id)  -- back where it was: CLAIM_FULL decides it
  return {{'slow'}}
end
redis.call('ZREM', p .. ':queued', id)
-- A whole pass (every campaign of weight 1) is written as Redis answered it: the bytes tostring and Redis's own
-- formatting of the number make, without formatting it.
local whole = #turn[2] <= 14 and not string.find(turn[2], '%D')
-- The virtual time moves to the pass (never back): set and read in one command; put back in the rare case it was
-- ahead (CLAIM_FULL passed over a busy campaign first in turn).
local vkey = p .. ':campaigns:vtime'
local vold = redis.call('SET', vkey, whole and turn[2] or tostring(pass), 'GET')
if vold and tonumber(vold) > pass then redis.call('SET', vkey, vold) end
if redis.call('ZCARD', queued) > 0 then
  local stride = 1 / (tonumber(c[4]) or 1)
  redis.call('ZADD', ready, 'XX', (whole and stride == 1) and string.format('%d', pass + 1) or pass + stride, cid)
else
  redis.call('ZREM', ready, cid)
end
-- The claim: next start request, next fencing token, its worker; `record` queued -> dispatching.
local attempts = string.format('%d', (tonumber(f[4]) or 0) + 1)
local token = string.format('%d', (tonumber(f[5]) or 0) + 1)
redis.call('HSET', ck, 'attempts', attempts, 'lease', token, 'worker', worker, 'status', 'dispatching',
  'updated_at', nows)
-- The history entry `record` makes, byte for byte as cjson.encode writes it there (its key order; a worker id that
-- needs escaping is encoded by cjson), without building and encoding two tables.
local wj = string.find(worker, '^[%w%-_.:]*$') and ('"' .. worker .. '"') or cjson.encode(worker)
local detail = '"detail":{{"attempt":' .. attempts .. ',"claim":' .. token .. ',"worker":' .. wj .. '}}}}'
if tonumber(f[9] or '1') > 1 then
  redis.call('RPUSH', ck .. ':history', '{{"at":' .. nows .. ',"source":"dispatcher","status":"dispatching","attempt":'
    .. f[9] .. ',' .. detail)
else
  redis.call('RPUSH', ck .. ':history', '{{"at":' .. nows .. ',"status":"dispatching","source":"dispatcher",' .. detail)
end
local counts = p .. ':counts'
redis.call('HINCRBY', counts, 'queued', '-1')
redis.call('HINCRBY', counts, 'dispatching', '1')
redis.call('ZADD', inflight, 'NX', nows, id)
-- the call's campaign (counted in it when it has a wver): the campaign in turn, as its queue held the call
local own = f[7] and (f[7] == cid and camp or (p .. ':campaign:' .. f[7]))
if own and f[3] then
  redis.call('HINCRBY', own, 'n:queued', '-1')
  redis.call('HINCRBY', own, 'n:dispatching', '1')
  redis.call('ZADD', own .. ':inflight', 'NX', nows, id)
end
redis.call('ZADD', p .. ':dispatching', string.format('%d', now + tonumber(ARGV[4])), id)
-- The start, in both paces; both trimmed to the last minute once a second per campaign (scripts.add_starts).
local start = id .. ':' .. attempts
redis.call('ZADD', pace, nows, start)
if own then redis.call('ZADD', own .. ':pace', nows, start) end
if own ~= camp or c[6] ~= t[1] then
  local old = string.format('%d', now - 60000)
  redis.call('ZREMRANGEBYSCORE', pace, '-inf', old)
  if own then redis.call('ZREMRANGEBYSCORE', own .. ':pace', '-inf', old) end
  if own == camp then redis.call('HSET', camp, 'pace_trimmed_s', t[1]) end
end
return {{'claimed', id, token, attempts, nows, f[6], f[7], f[8], f[9], f[10], f[11], f[12]}}
"""

# The tail CLAIM_FULL answers a claim with: the same reply as CLAIM's (its caller has `ck`, `id`, `token`,
# `attempt` = the start requests, `now`).
CLAIMED_REPLY = f"""
local claimed = redis.call('HMGET', ck, {_HMGET})
return {{'claimed', id, tostring(token), tostring(attempt), tostring(now), unpack(claimed)}}
"""
