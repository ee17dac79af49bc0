"""When a waiting call may be dialled: the decision for one call, from its zones, its earliest time and the hours.

Pure: the planner loop and bulk enqueue call it with the service clock's "now". A call is ready (`queue`) when
now is inside its calling hours and past its earliest time; otherwise it waits (`wait`) until the first instant
that is both; a call whose zones share no calling hours within the horizon can never be dialled legally (`end`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from callqueue.campaigns.hours import HORIZON_DAYS, CallingHours, next_opening, utc_iso
from callqueue.phones import InvalidPhone, parse_e164, time_zones

WaitingFor = Literal["calling_hours", "not_before", "retry"]


@dataclass(frozen=True)
class Plan:
    action: Literal["queue", "wait", "end"]
    at_ms: int | None = None  # queue: when its calling hours close (None: no window); wait: when it is due
    waiting_for: WaitingFor | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class NoTimeZone(ValueError):
    """The number's zone cannot be told and none was given: calling hours cannot be applied."""


def plan_call(
    hours: CallingHours | None,
    zones: Sequence[str],
    now_ms: int,
    earliest_ms: int | None = None,
    earliest_reason: WaitingFor = "not_before",
) -> Plan:
    start = max(now_ms, earliest_ms or 0)
    if hours is None:
        if start <= now_ms:
            return Plan("queue")
        return Plan("wait", start, earliest_reason, {"due_at": utc_iso(start)})
    opening = next_opening(hours, zones, start)
    if opening is None:
        reason = (
            f"no calling hours ({hours.describe()}) in common across its time zones {', '.join(zones)} within"
            f" {HORIZON_DAYS} days; enqueue it with its own time_zone"
        )
        return Plan("end", detail={"reason": reason})
    window = {"calling_hours": hours.describe(), "time_zones": list(zones), "closes_at": utc_iso(opening.close_ms)}
    if opening.open_ms <= now_ms:
        return Plan("queue", opening.close_ms, None, window)
    waiting: WaitingFor = "calling_hours" if opening.open_ms > start else earliest_reason
    return Plan("wait", opening.open_ms, waiting, {**window, "due_at": utc_iso(opening.open_ms)})


def zones_for(phone: str, explicit: str | None, fallback: str | None) -> tuple[tuple[str, ...], str]:
    """(zones, source): the call's own time zone, else the number's (phonenumbers), else the campaign's fallback."""
    if explicit:
        return (explicit,), "call"
    try:
        _, number, kind = parse_e164(phone)
        zones = time_zones(number, kind)
    except InvalidPhone:
        zones = ()
    if zones:
        return zones, "number"
    if fallback:
        return (fallback,), "campaign"
    raise NoTimeZone(
        f"cannot tell the time zone of {phone} from the number; give the call a time_zone, or the campaign one"
    )
