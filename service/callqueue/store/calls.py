"""Typed operations on calls, each one atomic in Redis (see scripts.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callqueue.clock import Clock, SystemClock
from callqueue.ids import new_call_id
from callqueue.settings import PLAIN_BY_NAME
from callqueue.states import CallStatus
from callqueue.store import campaign_scripts, claim_script, scripts
from callqueue.store.attempts import split_attempt_id
from callqueue.store.keys import Keys
from callqueue.store.records import CallRecord

log = logging.getLogger("callqueue.campaigns")
fence_log = logging.getLogger("callqueue.dispatch")


class CampaignCanceled(Exception):
    """The campaign was canceled: it takes no new calls."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} was canceled and takes no new calls; use another campaign_id")
        self.campaign_id = campaign_id


@dataclass(frozen=True)
class Enqueued:
    call_id: str
    replayed: bool
    status: str = "queued"


class QueueFull(Exception):
    """The admission limit: `waiting` calls (queued or scheduled) already wait (MAX_QUEUED_CALLS); nothing was
    written."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} calls waiting")
        self.waiting = waiting


class StaleClaim(Exception):
    """A write for a claim that is no longer the call's: its lease ran out and the call was claimed again (by the
    reconciler or another worker). Nothing was written; the holder of the stale claim must stop acting for it."""

    def __init__(self, call_id: str, mine: int, current: int, action: str) -> None:
        super().__init__(
            f"call {call_id}: {action} refused: claim {mine} is stale, the call's current claim is {current}"
        )
        self.call_id = call_id
        self.mine = mine
        self.current = current
        self.action = action


@dataclass(frozen=True)
class Claim:
    """What a claim attempt returned: a call to start (with its fencing token and its record, as far as a worker
    uses it: CallRecord.from_claim), or why not and how long to wait."""

    outcome: Literal["claimed", "wait", "full", "empty", "blocked", "suppressed"]
    call_id: str | None = None
    wait_ms: int = 0
    token: int = 0
    record: CallRecord | None = None


@dataclass(frozen=True)
class Transitioned:
    """What a transition did. `stale`: the event belongs to an earlier attempt of the call and changed nothing.
    `notes`: what the campaign decided with the outcome (`breaker|{campaign}|{reason}`, `redial|{attempt}`)."""

    outcome: Literal["changed", "unchanged", "stale", "missing"]
    before: CallStatus | None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class QueueStatus:
    counts: dict[str, int]
    queued: int
    oldest_queued_age_s: float | None
    in_flight: int
    dispatching: int
    tracking: int
    pending_results: int
    dispatch_rate_per_s: float
    live_instances: int
    live_workers: int


def call_fingerprint(phone_number: str, campaign_id: str, call_config: dict[str, Any]) -> str:
    """What makes two queue requests the same call, to refuse an Idempotency-Key reused for another call.

    A digest, so the record does not hold a second copy of call_config (records written before kept it in full:
    `same_call` accepts both)."""
    return _digest(_fingerprint_text(phone_number, campaign_id, call_config))


def _fingerprint_text(phone_number: str, campaign_id: str, call_config: dict[str, Any], config_json: str = "") -> str:
    """`config_json`: the call_config already serialized this way (enqueue has it), else it is made here."""
    config_json = config_json or json.dumps(call_config, separators=(",", ":"), sort_keys=True)
    return f"{phone_number}|{campaign_id}|{config_json}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def same_call(stored: str, phone_number: str, campaign_id: str, call_config: dict[str, Any]) -> bool:
    text = _fingerprint_text(phone_number, campaign_id, call_config)
    return stored in (_digest(text), text)


# call_config as the record and the fingerprint hold it: compact, keys sorted, and allow_nan=False (a value the agent
# could not be sent as JSON must never be accepted; the API checks first). One encoder made once: json.dumps with
# these options builds a new one for every call (half its cost; json.dumps' output is the same).
_config_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False).encode


def _fence(token: int | None) -> str:
    return "" if token is None else str(token)


def _refuse_stale(result: list[str], attempt_id: str, mine: int | None, action: str, held_at: int) -> None:
    """A script answered `fenced`: log it (once per refused write, with both tokens) and raise StaleClaim."""
    if result[0] != "fenced" or mine is None:
        return
    call_id, _ = split_attempt_id(attempt_id)
    current = int(result[held_at])
    fence_log.warning("call %s: %s refused: this worker's claim %d is stale (the call's current claim is %d); "
                      "its lease ran out and the call was claimed again", call_id, action, mine, current)  # fmt: skip
    raise StaleClaim(call_id, mine, current, action)


def _default(name: str) -> int:
    return int(PLAIN_BY_NAME[name].default or 0)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CallStore:
    """All reads and writes of call state. Every instance of the service shares it through Redis."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock | None = None) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.clock: Clock = clock or SystemClock()
        self._prefix = prefix
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(getattr(scripts, name))
            for name in (
                "ENQUEUE",
                "KEEP_FINISHED",
                "SPEND_CALLBACK",
                "CLAIM_FULL",
                "PACE_RETRY",
                "TRANSITION",
                "MARK_DISPATCHED",
                "REQUEUE",
                "CANCEL",
                "CLAIM_DUE",
                "TAKE_OVER",
                "EXTEND_LEASE",
                "RESCHEDULE",
            )
        }
        self._scripts["CLAIM"] = redis.register_script(claim_script.CLAIM)
        for name in (
            "ENQUEUE_BATCH",
            "PLAN_DUE",
            "PLAN",
            "CAMPAIGN_PUT",
            "CAMPAIGN_CONTROL",
            "CANCEL_CHUNK",
            "ADOPT_QUEUED",
            "FORGET_GONE",
        ):
            self._scripts[name] = redis.register_script(getattr(campaign_scripts, name))

    async def _run(self, name: str, *args: Any, keys: list[str] | None = None) -> list[str]:
        if keys:
            result = await self._scripts[name](keys=keys, args=[self._prefix, *args])
        else:
            result = await self._evalsha(name, *args)
        return [_s(x) for x in result] if isinstance(result, list) else [_s(result)]

    async def _evalsha(self, name: str, *args: Any) -> Any:
        """A keyless script by its digest, straight on a connection of the client's pool (every script but
        CLAIM_DUE: redis-py's script wrapper costs more Python than the call itself); a Redis that lost its scripts
        (restarted, SCRIPT FLUSH, a failover) gets it loaded again by the wrapper, which runs it.

        What redis-py's execute_command does for EVALSHA, without its layers (~14 µs of client CPU per script, an
        enqueue's ~10 %): the pool hands out a checked connection and takes it back; a connection or timeout error
        closes the connection and is raised, never retried (the service's client retries nothing: a script sent
        again could take a call twice); EVALSHA has no reply callback. The bounded wait is the connection's own
        (store/watchdog.py)."""
        script = self._scripts[name]
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_command("EVALSHA", script.sha, 0, self._prefix, *args)
            return await conn.read_response()
        except NoScriptError:
            pass
        except (RedisConnectionError, RedisTimeoutError):
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        return await script(args=[self._prefix, *args])

    async def run_script(self, name: str, *args: Any) -> list[str]:
        """One of the registered scripts with the key prefix first (the campaign store runs its own through it)."""
        return await self._run(name, *args)

    def script(self, name: str) -> AsyncScript:
        """A registered script, for pipelining many calls of it."""
        return self._scripts[name]

    # --- the API side -----------------------------------------------------------------------------------------

    async def enqueue(
        self,
        phone_number: str,
        campaign_id: str,
        call_config: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        max_queued: int | None = None,
        retention_s: int | None = None,
        traceparent: str | None = None,
        fields: dict[str, str] | None = None,
        due_ms: int | None = None,
        campaign_retention_s: int | None = None,
    ) -> Enqueued:
        """Admit and persist a call in one step; QueueFull with `max_queued` calls already waiting (queued or
        scheduled), CampaignCanceled if its campaign was canceled. `fields` are its own options (not_before, zones,
        retry); with its own not_before or zone, or calling hours on its campaign, it waits `scheduled` for the
        planner (first look at `due_ms`, default at once). `retention_s`: how long it is kept once final
        (CALL_RETENTION); `campaign_retention_s`: its campaign's (CAMPAIGN_RETENTION)."""
        config_json = _config_json(call_config)
        # Only a replay of an Idempotency-Key compares it: a call without one keeps none (as a bulk item without a key).
        fingerprint = (
            _digest(_fingerprint_text(phone_number, campaign_id, call_config, config_json)) if idempotency_key else ""
        )
        # A call without options of its own (the usual case) passes '{}', which the script does not decode.
        options = "{}"
        if fields:
            # Its own earliest time or time zone needs the planner; its own retry policy alone does not.
            plan = bool(fields.keys() & {"not_before", "zones"})
            options = json.dumps({"fields": fields, "plan": plan, "due": due_ms or 0})
        result = await self._evalsha(
            "ENQUEUE",
            new_call_id(),
            idempotency_key or "",
            fingerprint,
            retention_s if retention_s is not None else _default("CALL_RETENTION"),
            phone_number,
            campaign_id,
            config_json,
            max_queued if max_queued is not None else _default("MAX_QUEUED_CALLS"),
            traceparent or "",
            options,
            campaign_retention_s or "",
        )
        outcome = _s(result[0])
        if outcome == "full":
            raise QueueFull(int(result[1]))
        if outcome == "campaign_canceled":
            raise CampaignCanceled(campaign_id)
        if outcome == "replay":
            return Enqueued(_s(result[1]), True)
        return Enqueued(_s(result[1]), False, _s(result[2]))

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.call(call_id))
            pipe.lrange(self.keys.history(call_id), 0, -1)
            pipe.lrange(self.keys.attempts(call_id), 0, -1)
            raw, history, attempts = await pipe.execute()
        if not raw:
            return None
        return CallRecord.from_redis(
            {_s(k): _s(v) for k, v in raw.items()}, [_s(h) for h in history], [_s(a) for a in attempts]
        )

    async def cancel(self, call_id: str) -> tuple[str, str | None]:
        """('canceled', None) | ('not_cancelable', status) | ('missing', None)."""
        result = await self._run("CANCEL", call_id)
        return result[0], (result[1] if len(result) > 1 else None)

    # --- the dispatcher side ----------------------------------------------------------------------------------

    async def claim(
        self, rate: int, max_in_flight: int, lease_ms: int, worker_id: str, clock_ms: int | None = None
    ) -> Claim:
        """The next call under the global limits and the campaigns' turns; calling hours read at `clock_ms`.

        One round trip in the plain case (claim_script.CLAIM); two when that one leaves the decision to the full
        rules (CLAIM_FULL). A claimed call comes with its record (Claim.record)."""
        clock = self.clock.now_ms() if clock_ms is None else clock_ms
        result = await self._evalsha("CLAIM", rate, max_in_flight, lease_ms, worker_id, clock)
        if result[0] == "slow":
            result = await self._evalsha("CLAIM_FULL", rate, max_in_flight, lease_ms, worker_id, clock)
        outcome = result[0]
        if outcome == "claimed":
            # id, token, start requests, Redis time, then CLAIMED_FIELDS: from_claim's arguments in its order.
            call_id, token = result[1], int(result[2])
            record = CallRecord.from_claim(call_id, token, int(result[3]), int(result[4]), *result[5:])
            return Claim("claimed", call_id=call_id, token=token, record=record)
        if outcome == "wait":
            return Claim("wait", wait_ms=int(result[1]))
        if outcome == "suppressed":
            return Claim(outcome, call_id=result[1])
        return Claim(outcome)

    async def pace_retry(self, call_id: str, rate: int, lease_ms: int, *, fence: int | None = None) -> tuple[str, int]:
        """Take a pacing slot for another start attempt: ('ok', attempt) | ('wait', ms) | ('lost', 0).
        StaleClaim when `fence` is no longer the call's claim."""
        result = await self._run("PACE_RETRY", rate, call_id, lease_ms, _fence(fence))
        _refuse_stale(result, call_id, fence, "another start attempt", held_at=1)
        return result[0], int(result[1]) if len(result) > 1 else 0

    async def mark_dispatched(
        self,
        attempt_id: str,
        request_uuid: str,
        detail: dict[str, Any],
        first_check_delay_ms: int,
        *,
        fence: int | None = None,
    ) -> CallStatus | None:
        """Record the agent's acceptance of one attempt; returns the status before (a callback may have moved it on
        already). None when the call is unknown, or that attempt already ended and the next one began. StaleClaim,
        with nothing written, when `fence` is no longer the call's claim."""
        result = await self._run(
            "MARK_DISPATCHED", attempt_id, request_uuid, json.dumps(detail), first_check_delay_ms, _fence(fence)
        )
        _refuse_stale(result, attempt_id, fence, "marking it dispatched", held_at=2)
        return CallStatus(result[1]) if result[0] == "ok" else None

    async def requeue(self, call_id: str, detail: dict[str, Any], *, fence: int | None = None) -> bool:
        result = await self._run("REQUEUE", call_id, json.dumps(detail), _fence(fence))
        _refuse_stale(result, call_id, fence, "requeueing it", held_at=1)
        return result[0] == "requeued"

    async def extend_lease(
        self, call_id: str, lease_ms: int, *, fence: int | None = None, fields: dict[str, str] | None = None
    ) -> None:
        """Keep a dispatch lease `lease_ms` more (and record `fields` on the call) while the claim is still the
        call's; StaleClaim, with nothing written, once another claim took the call over."""
        result = await self._run("EXTEND_LEASE", call_id, lease_ms, _fence(fence), json.dumps(fields or {}))
        _refuse_stale(result, call_id, fence, "extending its lease", held_at=1)

    async def take_over_dispatches(self, lease_ms: int, limit: int = 20) -> list[tuple[str, int]]:
        """Dispatches whose worker vanished or whose outcome is unknown, each leased to the caller under a new claim
        token (call id, token): the worker that held it can write nothing for it from now on."""
        flat = await self._run("TAKE_OVER", lease_ms, limit)
        return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]

    async def expired_dispatches(self, lease_ms: int, limit: int = 20) -> list[str]:
        """Like take_over_dispatches, the ids only (each call's token is on its record: CallRecord.claim_token)."""
        return [call_id for call_id, _ in await self.take_over_dispatches(lease_ms, limit)]

    # --- the tracker side -------------------------------------------------------------------------------------

    async def transition(
        self,
        attempt_id: str,
        status: CallStatus,
        source: str,
        detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        *,
        fence: int | None = None,
    ) -> tuple[bool, CallStatus | None]:
        """Move the attempt forward if the state machine allows; returns (changed, status before).

        `attempt_id` names the dial attempt (CallRecord.attempt_id; a plain call id is attempt 1): an event of an
        attempt that is no longer the call's current one changes nothing. `fence`: the claim the writer acts for
        (the dispatcher); StaleClaim, with nothing written, when it is no longer the call's."""
        done = await self.transition_result(attempt_id, status, source, detail, fields, fence=fence)
        return done.outcome == "changed", done.before

    async def transition_result(
        self,
        attempt_id: str,
        status: CallStatus,
        source: str,
        detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        *,
        fence: int | None = None,
    ) -> Transitioned:
        result = await self._run(
            "TRANSITION",
            attempt_id,
            status.value,
            source,
            json.dumps(detail or {}),
            json.dumps(fields or {}),
            _fence(fence),
        )
        _refuse_stale(result, attempt_id, fence, f"moving it to {status.value}", held_at=2)
        if result[0] == "missing":
            return Transitioned("missing", None)
        done = Transitioned(result[0], CallStatus(result[1]), tuple(result[2:]))  # type: ignore[arg-type]
        call_id, attempt = split_attempt_id(attempt_id)
        for note in done.notes:
            kind, _, rest = note.partition("|")
            if kind == "breaker":
                campaign, _, reason = rest.partition("|")
                log.error("campaign %s paused by its circuit breaker: %s (resume: POST /api/campaigns/%s/resume)",
                          campaign, reason, campaign)  # fmt: skip
            elif kind == "redial":
                log.info("call %s: attempt %d ended %s; attempt %s scheduled by the retry policy",
                         call_id, attempt, status.value, rest)  # fmt: skip
        return done

    async def due_for_check(self, lease_ms: int, limit: int) -> list[str]:
        return await self._run("CLAIM_DUE", lease_ms, limit, keys=[self.keys.tracking])

    async def reschedule(self, call_id: str, delay_ms: int) -> bool:
        return (await self._run("RESCHEDULE", call_id, delay_ms))[0] == "1"

    async def set_tracking_fields(self, call_id: str, **fields: str | int) -> None:
        """Tracker bookkeeping (consecutive errors, last poll...) stored as trk_* fields on the record."""
        if fields:
            await self.redis.hset(self.keys.call(call_id), mapping={f"trk_{k}": v for k, v in fields.items()})  # type: ignore[misc]

    async def call_id_for(self, *, request_uuid: str | None = None, call_uuid: str | None = None) -> str | None:
        key = self.keys.by_call_uuid(call_uuid) if call_uuid else self.keys.by_request_uuid(request_uuid or "")
        value = await self.redis.get(key)
        return _s(value) if value is not None else None

    async def callback_seen(self, attempt_id: str, digest: str) -> bool:
        """Whether a signed callback with this digest was already applied to the call (one set per call, whichever
        of its attempts the callback named)."""
        call_id, _ = split_attempt_id(attempt_id)
        return bool(await self.redis.sismember(self.keys.callbacks(call_id), digest))  # type: ignore[misc]

    async def spend_callback(self, attempt_id: str, digest: str) -> None:
        """Remember an applied callback for as long as its call is kept (replays are refused from now on)."""
        call_id, _ = split_attempt_id(attempt_id)
        await self._run("SPEND_CALLBACK", call_id, digest)

    # --- the result delivery side -----------------------------------------------------------------------------

    async def keep_finished(self, attempt_id: str, seconds: int | None = None) -> None:
        """Keep a finished call at least `seconds` more (default: its retention); a live call, or one whose next
        attempt is scheduled, has no expiry. Takes a call id or one of its attempt ids."""
        call_id, _ = split_attempt_id(attempt_id)
        await self._run("KEEP_FINISHED", call_id, "" if seconds is None else seconds)

    async def due_for_delivery(self, lease_ms: int, limit: int) -> list[str]:
        """Outbox members (`{attempt_id}:{status}`) due for delivery, each leased to the caller for `lease_ms`."""
        return await self._run("CLAIM_DUE", lease_ms, limit, keys=[self.keys.outbox])

    # --- observation ------------------------------------------------------------------------------------------

    async def heartbeat(self, instance_id: str) -> None:
        await self._beat(self.keys.instances, instance_id)

    async def worker_heartbeat(self, worker_id: str) -> None:
        await self._beat(self.keys.workers, worker_id)

    async def _beat(self, key: str, member: str) -> None:
        now = self.now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", now - 3_600_000)
            await pipe.execute()

    async def forget(self, instance_id: str, worker_ids: list[str]) -> None:
        """A draining instance leaves the live counts at once instead of aging out of them."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.instances, instance_id)
            if worker_ids:
                pipe.zrem(self.keys.workers, *worker_ids)
            await pipe.execute()

    async def queue_status(self, live_window_s: int = 30) -> QueueStatus:
        now = self.now_ms()
        live_since = now - live_window_s * 1000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.counts)
            pipe.zcard(self.keys.queued)
            pipe.zrange(self.keys.queued, 0, 0)
            pipe.zcard(self.keys.in_flight)
            pipe.zcard(self.keys.dispatching)
            pipe.zcard(self.keys.tracking)
            pipe.zcard(self.keys.outbox)
            pipe.zcount(self.keys.pace, now - 60_000, "+inf")
            pipe.zcount(self.keys.instances, live_since, "+inf")
            pipe.zcount(self.keys.workers, live_since, "+inf")
            replies = await pipe.execute()
        counts, queued, head, in_flight, dispatching, tracking, outbox, starts, instances, workers = replies
        oldest_age = None
        if head:
            created = await self.redis.hget(self.keys.call(_s(head[0])), "created_at")  # type: ignore[misc]
            if created is not None:
                oldest_age = max(0.0, (now - int(_s(created))) / 1000)
        return QueueStatus(
            counts={_s(k): int(v) for k, v in counts.items() if int(v) > 0},
            queued=int(queued),
            oldest_queued_age_s=oldest_age,
            in_flight=int(in_flight),
            dispatching=int(dispatching),
            tracking=int(tracking),
            pending_results=int(outbox),
            dispatch_rate_per_s=round(int(starts) / 60, 3),
            live_instances=int(instances),
            live_workers=int(workers),
        )

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
