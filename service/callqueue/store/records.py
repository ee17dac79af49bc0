"""The call record as the API and the tracker see it, decoded from its Redis hash, history and attempt snapshots.

A call's first history entry is not stored: enqueue (single and bulk) writes the call's hash and no history list, so
accepting a call creates one key, not two. The record says everything that entry would (`created_at`, and
`accepted_as`: the status it was accepted in), and the reader puts the entry ahead of the stored ones
(`first_transition`, the one place that defines it). Every later change appends to the list as before, so a script
that changes a call needs to know nothing of this. A record without `accepted_as` was written before: its list
holds its first entry.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callqueue.states import CallStatus
from callqueue.store.attempts import attempt_id


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Transition:
    at_ms: int
    status: CallStatus
    source: str
    detail: dict[str, Any]
    attempt: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at_ms),
            "status": self.status.value,
            "source": self.source,
            "detail": self.detail,
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class AttemptSnapshot:
    """An ended dial attempt of a call that was redialled: its outcome and its own fields (uuids, reason, …)."""

    attempt: int
    outcome: CallStatus
    ended_at_ms: int
    fields: dict[str, str]

    @classmethod
    def from_json(cls, raw: str) -> AttemptSnapshot:
        data = json.loads(raw)
        fields = data.get("fields") or {}
        return cls(int(data["attempt"]), CallStatus(data["outcome"]), int(data["ended_at"]), dict(fields))


# Who accepted a call: the source of its first history entry, for a single enqueue and a bulk one alike.
FIRST_SOURCE = "api"


def first_transition(created_at_ms: int, status: CallStatus) -> Transition:
    """A call's first history entry, from its record: accepted at created_at, in status `accepted_as`."""
    return Transition(created_at_ms, status, FIRST_SOURCE, {})


def _history(raw: dict[str, str], history: list[str]) -> tuple[Transition, ...]:
    stored = tuple(
        Transition(int(e["at"]), CallStatus(e["status"]), e["source"], e.get("detail") or {}, int(e.get("attempt", 1)))
        for e in map(json.loads, history)
    )
    accepted_as = raw.get("accepted_as")
    if not accepted_as:  # written before the first entry moved into the record: its list holds it
        return stored
    return (first_transition(int(raw["created_at"]), CallStatus(accepted_as)), *stored)


def _opt_int(raw: str | None) -> int | None:
    return int(float(raw)) if raw not in (None, "") else None


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    phone_number: str
    campaign_id: str
    call_config: dict[str, Any]
    status: CallStatus
    created_at_ms: int
    updated_at_ms: int
    attempts: int
    request_uuid: str | None = None
    call_uuid: str | None = None
    dispatched_at_ms: int | None = None
    duration: int | None = None
    hangup_cause: str | None = None
    recording_url: str | None = None
    reason: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    traceparent: str | None = None  # W3C trace context of the enqueue request (tracing.py)
    tracking: dict[str, str] = field(default_factory=dict)
    history: tuple[Transition, ...] = ()
    attempt: int = 1
    starts_before: int = 0
    due_at_ms: int | None = None
    waiting_for: str | None = None
    not_before_ms: int | None = None
    zones: tuple[str, ...] = ()
    zone_source: str | None = None
    window_close_ms: int | None = None
    retry: dict[str, Any] | None = None
    retry_after: str | None = None
    item_key: str | None = None
    previous: tuple[AttemptSnapshot, ...] = ()
    claim_token: int = 0  # the fencing token of the call's current claim (0: never claimed)

    @property
    def attempt_id(self) -> str:
        """What the agent, Plivo's callbacks and the backend know this dial attempt by (store/attempts.py)."""
        return attempt_id(self.call_id, self.attempt)

    @property
    def start_requests(self) -> int:
        """Agent start requests of the current attempt (MAX_DISPATCH_ATTEMPTS applies per attempt)."""
        return self.attempts - self.starts_before

    @classmethod
    def from_redis(cls, raw: dict[str, str], history: list[str], attempts: list[str] | None = None) -> CallRecord:
        tracking = {k[len("trk_") :]: v for k, v in raw.items() if k.startswith("trk_")}
        zones = raw.get("zones")
        return cls(
            call_id=raw["call_id"],
            phone_number=raw["phone_number"],
            campaign_id=raw["campaign_id"],
            call_config=json.loads(raw["call_config"]),
            status=CallStatus(raw["status"]),
            created_at_ms=int(raw["created_at"]),
            updated_at_ms=int(raw.get("updated_at") or raw["created_at"]),  # enqueue writes created_at only
            attempts=int(raw.get("attempts", "0")),  # written by the first claim
            request_uuid=raw.get("request_uuid"),
            call_uuid=raw.get("call_uuid"),
            dispatched_at_ms=_opt_int(raw.get("dispatched_at")),
            duration=_opt_int(raw.get("duration")),
            hangup_cause=raw.get("hangup_cause"),
            recording_url=raw.get("recording_url"),
            reason=raw.get("reason"),
            idempotency_key=raw.get("idempotency_key"),
            fingerprint=raw.get("fingerprint"),
            traceparent=raw.get("traceparent"),
            tracking=tracking,
            history=_history(raw, history),
            attempt=int(raw.get("attempt", "1")),
            starts_before=int(raw.get("starts_before", "0")),
            due_at_ms=_opt_int(raw.get("due_at")),
            waiting_for=raw.get("waiting_for") or None,
            not_before_ms=_opt_int(raw.get("not_before")),
            zones=tuple(zones.split(",")) if zones else (),
            zone_source=raw.get("zone_source"),
            window_close_ms=_opt_int(raw.get("window_close")),
            retry=json.loads(raw["retry"]) if raw.get("retry") else None,
            retry_after=raw.get("retry_after"),
            item_key=raw.get("item_key"),
            previous=tuple(AttemptSnapshot.from_json(a) for a in attempts or ()),
            claim_token=int(raw.get("lease", "0")),
        )

    @classmethod
    def from_claim(
        cls,
        call_id: str,
        token: int,
        attempts: int,
        now_ms: int,
        phone_number: str,
        campaign_id: str,
        call_config: str,
        attempt: str | None,
        starts_before: str | None,
        traceparent: str | None,
        created_at: str,
    ) -> CallRecord:
        """The record as a claim returns it (store/claim_script.py): `dispatching` under claim `token`, with the
        fields a dispatch worker uses (after the first four, CLAIMED_FIELDS in their order, None for a field the
        hash lacks). No history, ended attempts or tracking fields: the worker reads none of them, and a claim
        does not ship them.

        Built on every claim, so without the dataclass's __init__ (which sets each of the ~35 fields through
        object.__setattr__, as a frozen dataclass must: ~4x the cost): the defaults, then the claimed fields, the
        same record field for field (tests/campaigns/test_claim_read.py holds it to __init__'s); call_config parsed
        by _loads."""
        record = object.__new__(cls)
        values = record.__dict__
        values.update(_DEFAULTS)
        for name, factory in _FACTORIES:
            values[name] = factory()
        # One item at a time: update() with keywords builds a dict of them first.
        values["call_id"] = call_id
        values["phone_number"] = phone_number
        values["campaign_id"] = campaign_id
        values["call_config"] = _loads(call_config)
        values["status"] = CallStatus.DISPATCHING
        values["created_at_ms"] = int(created_at)
        values["updated_at_ms"] = now_ms
        values["attempts"] = attempts
        values["traceparent"] = traceparent
        values["attempt"] = int(attempt) if attempt is not None else 1
        values["starts_before"] = int(starts_before) if starts_before is not None else 0
        values["claim_token"] = token
        return record

    def attempt_view(self, attempt: int) -> CallRecord:
        """The record as it stood for one attempt: that attempt's fields, outcome and history only."""
        history = tuple(t for t in self.history if t.attempt == attempt)
        if attempt == self.attempt:
            return dataclasses.replace(self, history=history)
        snapshot = next((a for a in self.previous if a.attempt == attempt), None)
        if snapshot is None:
            raise KeyError(f"call {self.call_id} has no attempt {attempt}")
        f = snapshot.fields
        return dataclasses.replace(
            self,
            status=snapshot.outcome,
            attempt=attempt,
            updated_at_ms=snapshot.ended_at_ms,
            request_uuid=f.get("request_uuid"),
            call_uuid=f.get("call_uuid"),
            dispatched_at_ms=_opt_int(f.get("dispatched_at")),
            duration=_opt_int(f.get("duration")),
            hangup_cause=f.get("hangup_cause"),
            recording_url=f.get("recording_url"),
            reason=f.get("reason"),
            tracking={k[len("trk_") :]: v for k, v in f.items() if k.startswith("trk_")},
            history=history,
            due_at_ms=None,
            waiting_for=None,
        )

    def dial_attempts(self) -> list[dict[str, Any]]:
        """Every attempt, oldest first, each with its own outcome (or current status) and history."""
        out = []
        for n in range(1, self.attempt + 1):
            try:
                view = self.attempt_view(n)
            except KeyError:
                continue
            out.append(
                {
                    "attempt": n,
                    "attempt_id": view.attempt_id,
                    "status": view.status.value,
                    "reason": view.reason,
                    "request_uuid": view.request_uuid,
                    "call_uuid": view.call_uuid,
                    "duration": view.duration,
                    "hangup_cause": view.hangup_cause,
                    "history": [t.as_json() for t in view.history],
                }
            )
        return out

    @property
    def trace_id(self) -> str | None:
        """The trace id of `traceparent` (`00-{trace_id}-{span}-{flags}`), as Cloud Logging and Trace show it."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 else None

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "status": self.status.value,
            "phone_number": self.phone_number,
            "campaign_id": self.campaign_id,
            "call_config": self.call_config,
            "created_at": iso(self.created_at_ms),
            "updated_at": iso(self.updated_at_ms),
            "attempts": self.attempts,
            "request_uuid": self.request_uuid,
            "call_uuid": self.call_uuid,
            "duration": self.duration,
            "hangup_cause": self.hangup_cause,
            "recording_url": self.recording_url,
            "reason": self.reason,
            "trace_id": self.trace_id,
            "attempt": self.attempt,
            "attempt_id": self.attempt_id,
            "due_at": iso(self.due_at_ms),
            "waiting_for": self.waiting_for,
            "not_before": iso(self.not_before_ms),
            "time_zones": list(self.zones),
            "history": [t.as_json() for t in self.history],
            "dial_attempts": self.dial_attempts(),
        }


# What json.loads calls once it has skipped the whitespace (set by JSONDecoder.__init__; typeshed omits it).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(raw: str) -> Any:
    """json.loads, for a claim's call_config: the C scanner json.loads ends up in, called directly (json.loads
    first matches the whitespace around the document with a regex, twice: half its time on a small document).
    Anything but a bare document (whitespace around it, extra data, not a str) goes through json.loads, which
    answers or raises as always."""
    try:
        value, end = _scan(raw, 0)
    except (StopIteration, TypeError):
        return json.loads(raw)
    return value if end == len(raw) else json.loads(raw)


# CallRecord.from_claim's start: every field's default (a default_factory called for each record).
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CallRecord) if f.default is not dataclasses.MISSING}
_FACTORIES = tuple(
    (f.name, f.default_factory) for f in dataclasses.fields(CallRecord) if f.default_factory is not dataclasses.MISSING
)
if hasattr(CallRecord, "__post_init__"):
    raise TypeError("CallRecord.from_claim builds records without __init__: make it call __post_init__ too")
