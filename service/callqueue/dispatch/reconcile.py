"""Settles dispatches whose outcome is unknown (the worker died, the agent's answer was lost): a dial is re-sent only
when it is *proven* not to exist (docs/contracts.md, "Proof before a dial is re-sent").

Each look asks the agent (`GET /calls/{attempt_id}`) and searches Plivo (dial_search.py):
- the agent knows the call with its uuids, or Plivo shows it (queued, live, or finished since the attempt began):
  it is adopted, its uuids recorded, and tracked like any other dispatched call;
- proof that it does not exist: an agent that implements the status contract says `not_started` *and* Plivo shows
  nothing; or, from an agent that gives no explicit answer (pipecat's stock example has no status route: its 404
  proves nothing), Plivo shows nothing in two complete searches DIAL_PROOF_SETTLE apart. Then the call goes back in
  line (or fails, when MAX_DISPATCH_ATTEMPTS start requests were proven never dialled);
- otherwise (Plivo unreachable, rate limited, too many unowned calls to check, the agent unsure) the call waits,
  leased, and is looked at again; after DIAL_PROOF_TIMEOUT it becomes `unknown` with the reason and is tracked,
  so Plivo's records can still settle it. It is never re-dialled on a guess.

Each call is taken over under a new claim token (store.take_over_dispatches), and every write made for it passes
that token as its fence: a reconciler that stalled past its lease and was overtaken (by another instance's
reconciler, or a worker's new claim) writes nothing more for that call (StaleClaim), like a stale worker.
"""

from __future__ import annotations

import logging

import httpx

from callqueue.clients.agent import AgentClient, AgentProtocolError, StatusAnswer
from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.dispatch.dial_search import DialSearch, search_dial
from callqueue.dispatch.worker import dispatch_lease_ms
from callqueue.settings import Settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore, StaleClaim
from callqueue.store.records import CallRecord
from callqueue.tracing import bind_call
from callqueue.tracking.apply import apply_event

log = logging.getLogger("callqueue.reconcile")
RELOOK_MAX_MS = 5_000  # between looks while nothing is known yet


class DispatchReconciler:
    def __init__(
        self, store: CallStore, agent: AgentClient, settings: Settings, plivo: PlivoClient | None = None
    ) -> None:
        self.store = store
        self.agent = agent
        self.settings = settings
        self.plivo = plivo

    async def run_once(self) -> int:
        """Reconcile every dispatch whose lease ran out; returns how many were looked at."""
        taken = await self.store.take_over_dispatches(dispatch_lease_ms(self.settings))
        for call_id, token in taken:
            try:
                await self.reconcile(call_id, token)
            except StaleClaim:
                pass  # overtaken while looking: the store logged it once; the new holder decides
            except Exception:
                log.exception("reconciling call %s failed; it stays leased and is retried", call_id)
        return len(taken)

    async def reconcile(self, call_id: str, token: int) -> None:
        """Settle one dispatch taken over under claim `token`; StaleClaim (nothing written) once overtaken."""
        record = await self.store.get(call_id)
        if record is None:
            await self.store.redis.zrem(self.store.keys.dispatching, call_id)
            return
        bind_call(call_id, record.traceparent)
        if record.status is not CallStatus.DISPATCHING:
            # A callback moved it on before the dispatch was recorded: the call exists; track it.
            await self.store.mark_dispatched(
                record.attempt_id, record.request_uuid or "", {"via": "callback"}, self._first_check_ms, fence=token
            )
            return
        now = self.store.now_ms()
        waiting_since = int(record.tracking.get("proof_since") or 0) or now
        agent_word, agent_problem = await self._ask_agent(record)
        known = agent_word.status if agent_word else None
        if known is not None and (known.request_uuid or known.call_uuid):
            await self._adopt_from_agent(record, agent_word, token)
            return
        search, plivo_problem, retry_after_s = await self._search_plivo(record)
        if search is not None and search.outcome == "found":
            await self._adopt_from_plivo(record, search, token)
            return
        absent = search is not None and search.outcome == "absent"
        absent_since = int(record.tracking.get("absent_since") or 0)
        proof = None
        if agent_word is not None and agent_word.kind == "not_started" and (absent or self.plivo is None):
            proof = "the agent says it never received this start (status contract: not_started)" + (
                "; Plivo shows no call to the number" if absent else "; no Plivo credentials to search with"
            )
        elif absent and absent_since and now - absent_since >= self.settings.dial_proof_settle * 1000:
            proof = (
                f"Plivo showed no call to the number (queued, live, or finished since the attempt began) in searches"
                f" {(now - absent_since) / 1000:.0f} s apart"
            )
        if proof is not None:
            await self._proven_absent(record, proof, token)
            return
        missing = self._what_is_missing(agent_word, agent_problem, search, plivo_problem)
        if now - waiting_since >= self.settings.dial_proof_timeout * 1000:
            await self._give_up(record, missing, now - waiting_since, token)
            return
        fields = {
            "trk_proof_since": str(waiting_since),
            "trk_proof_missing": missing[:500],
            "trk_absent_since": str((absent_since or now) if absent else 0),
        }
        if absent and not absent_since:
            delay_ms = self.settings.dial_proof_settle * 1000
        else:
            delay_ms = min(RELOOK_MAX_MS, self.settings.dial_proof_settle * 1000)
        if retry_after_s is not None:
            delay_ms = max(delay_ms, int(retry_after_s * 1000))
        await self.store.extend_lease(call_id, delay_ms, fence=token, fields=fields)
        log.info("call %s: dial not proven either way (%s); looking again in %.1fs", call_id, missing, delay_ms / 1000)

    @property
    def _first_check_ms(self) -> int:
        return self.settings.timing.initial_status_delay * 1000

    async def _ask_agent(self, record: CallRecord) -> tuple[StatusAnswer | None, str | None]:
        try:
            return await self.agent.lookup(record.attempt_id), None
        except (httpx.HTTPError, AgentProtocolError) as exc:
            return None, f"agent status unavailable: {type(exc).__name__}: {exc}"

    async def _search_plivo(self, record: CallRecord) -> tuple[DialSearch | None, str | None, float | None]:
        if self.plivo is None:
            return None, "no Plivo credentials (PLIVO_AUTH_ID/PLIVO_AUTH_TOKEN): Plivo cannot be searched", None
        try:
            return await search_dial(self.store, self.plivo, record), None, None
        except PlivoRateLimited as exc:
            return None, f"Plivo rate limited ({exc})", exc.retry_after_s
        except PlivoError as exc:
            return None, f"Plivo search failed: {exc}", None

    @staticmethod
    def _what_is_missing(
        agent_word: StatusAnswer | None, agent_problem: str | None, search: DialSearch | None, plivo_problem: str | None
    ) -> str:
        parts = []
        if agent_problem:
            parts.append(agent_problem)
        elif agent_word is not None and agent_word.kind == "no_word":
            parts.append(f"the agent gives no status answer ({agent_word.evidence[:80]}): proves nothing")
        elif agent_word is not None and agent_word.kind == "found":
            parts.append(f"the agent knows the start but has no Plivo uuid ({agent_word.evidence[:80]})")
        if plivo_problem:
            parts.append(plivo_problem)
        elif search is not None and search.outcome == "incomplete":
            parts.append(f"too many unowned calls at Plivo to check in one search ({search.looked})")
        elif search is not None and search.outcome == "absent":
            parts.append("Plivo shows no call yet: waiting for a second search DIAL_PROOF_SETTLE later")
        return "; ".join(parts) or "no proof yet"

    async def _adopt_from_agent(self, record: CallRecord, word: StatusAnswer | None, token: int) -> None:
        assert word is not None and word.status is not None
        known = word.status
        await self.store.mark_dispatched(
            record.attempt_id,
            known.request_uuid or "",
            {"via": "agent status", "agent_status": known.status},
            self._first_check_ms,
            fence=token,
        )
        log.info("call %s: Call status changed: dispatching → dispatched (agent confirms it: %s)",
                 record.call_id, known.status)  # fmt: skip

    async def _adopt_from_plivo(self, record: CallRecord, search: DialSearch, token: int) -> None:
        """The dial exists at Plivo: record its uuids on the call, then track it like any dispatched call."""
        detail = {"via": "plivo search", "found": search.where, "call_uuid": search.call_uuid}
        before = await self.store.mark_dispatched(
            record.attempt_id, search.request_uuid or "", detail, self._first_check_ms, fence=token
        )
        log.warning("call %s: Call status changed: dispatching → dispatched (adopted: Plivo shows its dial %s, %s)",
                    record.call_id, search.where, search.call_uuid or search.request_uuid)  # fmt: skip
        if before is not None and search.event is not None:
            await apply_event(self.store, search.event)  # its call uuid, and how far the call got

    async def _proven_absent(self, record: CallRecord, proof: str, token: int) -> None:
        cleared = {"trk_proof_since": "0", "trk_absent_since": "0", "trk_proof_missing": ""}
        await self.store.extend_lease(record.call_id, dispatch_lease_ms(self.settings), fence=token, fields=cleared)
        if record.start_requests >= self.settings.max_dispatch_attempts:
            reason = f"agent never started the call in {record.start_requests} attempts (proven: {proof})"
            await self.store.transition(
                record.attempt_id, CallStatus.FAILED, "reconciler", {"reason": reason}, {"reason": reason}, fence=token
            )
            log.error("call %s: Call status changed: dispatching → failed (%s)", record.call_id, reason)
            return
        await self.store.requeue(record.call_id, {"reason": f"dial proven not to exist: {proof}"}, fence=token)
        log.warning("call %s: Call status changed: dispatching → queued (dial proven not to exist: %s)",
                    record.call_id, proof)  # fmt: skip

    async def _give_up(self, record: CallRecord, missing: str, waited_ms: int, token: int) -> None:
        reason = (
            f"dispatch outcome unknown: no proof in {waited_ms / 1000:.0f} s (DIAL_PROOF_TIMEOUT) whether the person"
            f" was dialled; not re-dialled ({missing})"
        )
        await self.store.transition(
            record.attempt_id, CallStatus.UNKNOWN, "reconciler", {"reason": reason}, {"reason": reason}, fence=token
        )
        await self.store.redis.zrem(self.store.keys.dispatching, record.call_id)
        first_check = self.store.now_ms() + self._first_check_ms
        await self.store.redis.zadd(self.store.keys.tracking, {record.call_id: first_check})
        log.error("call %s: Call status changed: dispatching → unknown (%s); Plivo's records decide",
                  record.call_id, reason)  # fmt: skip
