"""GET /api/campaigns/{id}: counts per status and per attempt, progress, pace, ETA, next due, breaker state."""

from __future__ import annotations

from typing import Any

from callqueue.campaigns.store import CampaignView, call_counts
from callqueue.states import SETTLED, CallStatus
from callqueue.store.records import iso


def campaign_status(view: CampaignView, raw: dict[str, Any], now_ms: int) -> dict[str, Any]:
    fields: dict[str, str] = raw["fields"]
    by_status, total = call_counts(fields)
    per_attempt: dict[str, dict[str, int]] = {}
    for key, value in fields.items():
        if key.startswith("o:") and int(value) > 0:
            _, attempt, outcome = key.split(":", 2)
            per_attempt.setdefault(attempt, {})[outcome] = int(value)
    settled = sum(n for s, n in by_status.items() if s in {x.value for x in SETTLED})
    waiting = raw["queued"] + raw["scheduled"]
    per_s = raw["starts_last_minute"] / 60
    eta_s = round(waiting / per_s) if per_s > 0 and waiting else (0 if not waiting else None)
    next_due = raw["next_due"]
    recent: list[str] = raw["recent"]
    breaker = view.settings.breaker
    # State and pause fields from the same atomic read (`view` was read apart: a breaker may trip in between).
    state = fields.get("state", "active")
    paused = None
    if state == "paused":
        paused = {
            "by": fields.get("paused_by"),
            "reason": fields.get("paused_reason"),
            "at": iso(int(fields["paused_at"])) if fields.get("paused_at") else None,
        }
    return {
        "campaign_id": view.campaign_id,
        "state": state,
        "paused": paused,
        "canceled_at": iso(int(fields["canceled_at"])) if fields.get("canceled_at") else None,
        "calls": {
            "total": total,
            "by_status": dict(sorted(by_status.items())),
            "queued": raw["queued"],
            "scheduled": raw["scheduled"],
            "in_flight": raw["in_flight"],
        },
        "attempts": {n: dict(sorted(o.items())) for n, o in sorted(per_attempt.items(), key=lambda x: int(x[0]))},
        "progress": {
            "settled": settled,
            "unknown": by_status.get(CallStatus.UNKNOWN.value, 0),
            "total": total,
            "ratio": round(settled / total, 4) if total else None,
        },
        "pace": {"starts_last_minute": raw["starts_last_minute"], "per_s": round(per_s, 3)},
        "eta": {
            "seconds": eta_s,
            "at": iso(now_ms + eta_s * 1000) if eta_s is not None else None,
            "basis": "calls waiting (queued + scheduled) at the pace of the last minute; redials may add more",
        },
        "next_due": {"at": iso(next_due["at_ms"]), "waiting_for": next_due["waiting_for"]} if next_due else None,
        "next_window_opening": iso(next_due["at_ms"])
        if next_due and next_due["waiting_for"] == "calling_hours"
        else None,
        "breaker": {
            "enabled": breaker.enabled,
            "state": "open" if paused and paused["by"] == "breaker" else "closed",
            "recent_attempts": len(recent),
            "recent_failures": recent.count("1"),
            "window": breaker.window,
            "min_attempts": breaker.min_attempts,
            "failure_ratio": breaker.failure_ratio,
            "tripped_at": iso(int(fields["tripped_at"])) if fields.get("tripped_at") else None,
        },
        "settings": view.settings.model_dump(),
        "configured": view.configured,
    }
