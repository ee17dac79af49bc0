"""Everything one service process owns: clients, the store, and its background loops, started and drained together.

On SIGTERM (uvicorn → lifespan shutdown) the loops stop taking new work at once; a dispatch in progress gets a few
seconds to finish and is otherwise left leased in Redis, where another instance reconciles it. Nothing in memory
is needed by anyone else, so Cloud Run's ~10 s grace is enough.

When Redis is unavailable (down, full, read-only) a loop stops and waits with a growing backoff (OUTAGE_BACKOFF_S),
logging one line per step, then reads Redis's eviction policy (which also tells it answers) and resumes with one
line saying so; a Redis that comes back with an evicting policy keeps every loop waiting, each line naming the
policy, until it is fixed (store/policy_guard.py). Only the first failure of an outage carries a traceback (at most
one per OUTAGE_TRACEBACK_EVERY_S), so an outage of seconds costs a few lines, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from callqueue.campaigns.planner import Planner
from callqueue.clients.agent import AgentClient
from callqueue.clients.auth import IDENTITY_PATH, IdTokens, metadata_base_url
from callqueue.clients.backend import BackendClient
from callqueue.clients.plivo import PlivoBudget, PlivoClient
from callqueue.clock import Clock, SystemClock
from callqueue.delivery.outbox import ResultDelivery
from callqueue.dispatch.reconcile import DispatchReconciler
from callqueue.dispatch.worker import DispatchWorker, sleep_or_stop
from callqueue.metrics.callbacks import RefusedCallbacks
from callqueue.metrics.clients import MeasuredAgentClient, MeasuredBackendClient
from callqueue.metrics.process import ProcessMetrics
from callqueue.metrics.transport import outbound_client
from callqueue.operator.history import HistorySampler
from callqueue.settings import Settings
from callqueue.store.availability import is_unavailable, unavailable_reason
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis
from callqueue.store.policy_guard import PolicyGuard, RedisPolicyError
from callqueue.tracing import bind_call
from callqueue.tracking.agent_stream import AgentEventConsumer
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.checker import Checker
from callqueue.tracking.live_sweep import LiveSweep
from callqueue.tracking.rejections import Rejections
from callqueue.tracking.scheduler import TrackingScheduler
from callqueue.tracking.sources import Sources

log = logging.getLogger("callqueue.runtime")
DRAIN_GRACE_S = 6.0
MAINTENANCE_INTERVAL_S = 1.0
OUTAGE_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # waits of a loop while Redis is unavailable, then 30 s
OUTAGE_TRACEBACK_EVERY_S = 300.0  # at most one traceback of a Redis outage per this many seconds, all loops together
Loop = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    store: CallStore
    http: httpx.AsyncClient
    tokens: IdTokens
    agent: AgentClient
    instance_id: str
    guard: PolicyGuard
    metrics: ProcessMetrics
    plivo: PlivoClient | None = None  # None without PLIVO_AUTH_ID/TOKEN: status from events and the agent only
    rejections: Rejections = field(default_factory=Rejections)  # refused callbacks and events, counted and sampled
    refused_callbacks: RefusedCallbacks = field(default_factory=RefusedCallbacks)  # metrics, coalesced into Redis
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    outage_traceback_at: float | None = None  # when this process last logged a Redis outage's traceback

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        redis = service_redis(settings)
        metrics = ProcessMetrics(enabled=settings.metrics_enabled)
        http = outbound_client(settings, metrics)
        identity_url = metadata_base_url(settings.gce_metadata_host) + IDENTITY_PATH
        tokens = IdTokens(http, enabled=settings.use_id_tokens, metadata_url=identity_url)
        instance_id = f"{os.environ.get('K_REVISION') or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        timeout = settings.timing.request_timeout
        agent = (
            MeasuredAgentClient(settings.agent_server_url, http, tokens, timeout, metrics)
            if metrics.enabled
            else AgentClient(settings.agent_server_url, http, tokens, timeout)
        )
        guard = PolicyGuard(redis, settings.redis_allow_eviction)
        runtime = cls(
            settings=settings,
            redis=redis,
            store=CallStore(redis, settings.redis_key_prefix, clock or SystemClock()),
            http=http,
            tokens=tokens,
            agent=agent,
            instance_id=instance_id,
            guard=guard,
            metrics=metrics,
            refused_callbacks=RefusedCallbacks(hold=guard.refused),
        )
        runtime.plivo = _plivo_client(settings, runtime.store, http)
        return runtime

    @property
    def worker_ids(self) -> list[str]:
        return [f"{self.instance_id}/w{n}" for n in range(self.settings.dispatch_workers)]

    def loops(self) -> dict[str, Loop]:
        """Every background loop by name: dispatch, reconciliation, tracking, result delivery, history samples."""
        settings = self.settings
        loops: dict[str, Loop] = {}
        for n, worker_id in enumerate(self.worker_ids):
            loops[f"dispatch-{n}"] = DispatchWorker(self.store, self.agent, settings, worker_id).run
        loops["maintenance"] = self._maintenance
        loops["campaign-planner"] = Planner(self.store, self.store.clock).run
        cadence = Cadence(settings.timing)
        checker = Checker(self.store, Sources(self.plivo, self.agent), self.plivo, cadence)
        scheduler = TrackingScheduler(self.store, checker, settings.tracker_concurrency, cadence.check_lease_ms)
        loops["tracker"] = scheduler.run
        loops["live-sweep"] = LiveSweep(self.store, self.plivo, settings.timing).run
        loops["agent-events"] = AgentEventConsumer(self.store, cadence, self.instance_id, self.rejections).run
        delivery = ResultDelivery(self.store, self._backend(), self.plivo, settings.timing)
        loops["result-delivery"] = delivery.run
        loops["history"] = HistorySampler(self.store).run
        return loops

    def _backend(self) -> BackendClient:
        url = self.settings.backend_url + self.settings.backend_results_path
        timeout = self.settings.timing.request_timeout
        if self.metrics.enabled:
            return MeasuredBackendClient(url, self.http, self.tokens, timeout, self.metrics)
        return BackendClient(url, self.http, self.tokens, timeout)

    async def _maintenance(self, stop: asyncio.Event) -> None:
        reconciler = DispatchReconciler(self.store, self.agent, self.settings, self.plivo)
        while not stop.is_set():
            bind_call(None)  # the reconciler binds each call it settles; a pass is about none of them
            try:
                await self.store.heartbeat(self.instance_id)
                await reconciler.run_once()
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # the guard backs off until Redis is back
                log.exception("maintenance pass failed; retrying")
            await sleep_or_stop(stop, MAINTENANCE_INTERVAL_S)

    async def start(self, background: bool) -> None:
        """Check Redis's eviction policy, then start the background loops (when `background`).

        Raises RedisPolicyError when Redis answers with a policy that can drop keys. When Redis does not answer
        yet, the check and the loops wait for it in a task, so the process still serves /api/live and a 503 health.
        """
        verdict = await self.guard.check()
        if verdict == "refused":
            raise self.guard.error()
        if verdict == "ok":
            if background:
                self.start_background()
            return
        log.warning(
            "Redis does not answer at start-up (%s): its eviction policy is checked when it does; /api/health"
            " answers 503 until then%s",
            self.guard.last_error,
            ", and background work waits" if background else "",
        )
        self.tasks.append(asyncio.create_task(self._start_when_redis_answers(background), name="redis-policy"))

    async def _start_when_redis_answers(self, background: bool) -> None:
        if await self.guard.wait(self.stop) == "ok" and background and not self.stop.is_set():
            self.start_background()

    def start_background(self) -> None:
        for name, loop in self.loops().items():
            self.tasks.append(asyncio.create_task(self._guard(name, loop), name=name))
        log.info("instance %s started %d background loops", self.instance_id, len(self.tasks))

    async def _guard(self, name: str, loop: Loop) -> None:
        """Run `loop` until stop; restart it after a crash; wait out a Redis outage or refusal with backoff.

        Coming back, Redis's eviction policy is read again before the loop resumes (that read is the ping): a Redis
        that returns evicting keeps the loop waiting, with that reason in each line, until its policy is fixed.
        """
        outage_since: float | None = None
        step = 0
        while not self.stop.is_set():
            try:
                if outage_since is not None:
                    if await self.guard.read() == "refused":
                        raise self.guard.error()
                    log.warning("background loop %s: redis is back after %.1f s; resuming", name,
                                time.monotonic() - outage_since)  # fmt: skip
                    outage_since, step = None, 0
                await self._unless_refused(loop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                refused = isinstance(exc, RedisPolicyError)
                if isinstance(exc, RedisPolicyError):
                    reason: str | None = exc.reason  # Redis answers: the service declines, and says why
                elif is_unavailable(exc):
                    reason = unavailable_reason(exc)
                else:
                    reason = None
                if reason is None:
                    log.exception("background loop %s crashed; restarting in 1 s", name)
                    await sleep_or_stop(self.stop, 1.0)
                    continue
                outage_since = outage_since if outage_since is not None else time.monotonic()
                delay = OUTAGE_BACKOFF_S[min(step, len(OUTAGE_BACKOFF_S) - 1)]
                step += 1
                now = time.monotonic()
                first = not refused and (
                    self.outage_traceback_at is None or now - self.outage_traceback_at > OUTAGE_TRACEBACK_EVERY_S
                )
                if first:
                    self.outage_traceback_at = now
                log.error("background loop %s: redis is %s; waiting %.1f s (step %d)", name, reason, delay, step,
                          exc_info=exc if first else None)  # fmt: skip
                await sleep_or_stop(self.stop, delay)

    async def _unless_refused(self, loop: Loop) -> None:
        """Run `loop`; stop it when Redis's policy is refused meanwhile (another loop found it on its way back)."""
        if self.guard.refused.is_set():
            raise self.guard.error()
        work = asyncio.ensure_future(loop(self.stop))
        refused = asyncio.ensure_future(self.guard.refused.wait())
        stopped_by_refusal = False
        try:
            await asyncio.wait({work, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not work.done():
                stopped_by_refusal = refused.done() and not refused.cancelled()
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if stopped_by_refusal:
            raise self.guard.error()
        work.result()  # the loop's own end: returned at stop, or raised

    async def shutdown(self, grace_s: float = DRAIN_GRACE_S) -> None:
        self.stop.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.warning(
                    "drain: %d loops cancelled after %.0f s; their calls stay leased in Redis",
                    len(pending),
                    grace_s,
                )
        if not self.guard.refused.is_set():  # nothing is written to a Redis refused for its eviction policy
            with contextlib.suppress(Exception):
                await self.store.forget(self.instance_id, self.worker_ids if self.tasks else [])
            with contextlib.suppress(Exception):
                await self.refused_callbacks.close(self.redis, self.store.keys)
        await self.http.aclose()
        await self.redis.aclose()


def _plivo_client(settings: Settings, store: CallStore, http: httpx.AsyncClient) -> PlivoClient | None:
    """Plivo's REST client when PLIVO_AUTH_ID/TOKEN are set; its request budget is shared by every instance."""
    if not settings.plivo_auth_id or not settings.plivo_auth_token:
        return None
    budget = PlivoBudget(store.redis, store.keys.plivo_budget, settings.plivo_api_limit, settings.plivo_api_window)
    return PlivoClient(
        base_url=settings.plivo_api_base_url,
        auth_id=settings.plivo_auth_id,
        auth_token=settings.plivo_auth_token,
        http=http,
        budget=budget,
        timeout_s=settings.timing.request_timeout,
        max_retries=settings.timing.max_status_retries,
    )
