"""The call record as the API and the tracker see it, decoded from its Redis hash and history list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callqueue.states import CallStatus


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

    def as_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at_ms),
            "status": self.status.value,
            "source": self.source,
            "detail": self.detail,
        }


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

    @classmethod
    def from_redis(cls, raw: dict[str, str], history: list[str]) -> CallRecord:
        tracking = {k[len("trk_") :]: v for k, v in raw.items() if k.startswith("trk_")}
        return cls(
            call_id=raw["call_id"],
            phone_number=raw["phone_number"],
            campaign_id=raw["campaign_id"],
            call_config=json.loads(raw["call_config"]),
            status=CallStatus(raw["status"]),
            created_at_ms=int(raw["created_at"]),
            updated_at_ms=int(raw["updated_at"]),
            attempts=int(raw.get("attempts", "0")),
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
            history=tuple(
                Transition(int(e["at"]), CallStatus(e["status"]), e["source"], e.get("detail") or {})
                for e in map(json.loads, history)
            ),
        )

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
            "history": [t.as_json() for t in self.history],
        }
