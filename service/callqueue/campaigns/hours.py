"""Calling hours as instants: when a person may be called, from a local-time window and the person's time zones.

Pure functions of their arguments (the caller passes "now"), so tests move time freely, DST changes included.

Definition: an instant is inside the calling hours of a zone when that zone's wall clock shows an allowed weekday
and a time in [start, end). A number spanning several zones is inside only when it is inside in every one of them
(the most restrictive reading; a person whose zone we cannot tell apart is never called at 8 pm in one of them).

Arithmetic: within a span of constant UTC offset the wall clock is the instant plus the offset, so each allowed day
gives one interval per span; spans are found by bisecting where the offset changes. That covers spring-forward gaps
(the window opens at the first instant the clock shows a time at or after the start), fall-back repeats (both
readings count, so one day can hold two intervals), 30-minute and negative DST, and skipped days.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MS = 86_400_000
HOUR_S = 3600
HORIZON_DAYS = 8  # look this far ahead for an opening; none within it means the zones never share calling hours
Interval = tuple[int, int]  # [start, end) in epoch milliseconds


@dataclass(frozen=True)
class CallingHours:
    """A daily window of local wall-clock time [start, end) on the given weekdays (0 = Monday)."""

    start: time
    end: time
    days: frozenset[int] = field(default_factory=lambda: frozenset(range(7)))

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("calling hours are local wall-clock times: give them without a time zone")
        if self.start.microsecond or self.end.microsecond:
            raise ValueError("calling hours are whole seconds (HH:MM or HH:MM:SS)")
        if not self.start < self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M} (same day)")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError("days must be a non-empty set of weekdays 0 (Monday) … 6 (Sunday)")

    def contains_local(self, local: datetime) -> bool:
        """Whether a wall-clock reading falls inside the window."""
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def describe(self) -> str:
        days = ",".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"{self.start:%H:%M}–{self.end:%H:%M} {days}"


@dataclass(frozen=True)
class Opening:
    """The next stretch of calling hours: from `open_ms` (at the earliest the time asked about) to `close_ms`."""

    open_ms: int
    close_ms: int


def is_open(hours: CallingHours, zones: Iterable[str], at_ms: int) -> bool:
    """Direct check of one instant against every zone's wall clock (the definition, used as the tests' oracle)."""
    instant = datetime.fromtimestamp(at_ms / 1000, UTC)
    return all(hours.contains_local(instant.astimezone(_zone(z))) for z in zones)


def next_opening(hours: CallingHours, zones: Sequence[str], at_ms: int) -> Opening | None:
    """The first instant at or after `at_ms` inside the calling hours of every zone, with the end of that stretch.

    None when the zones share no calling hours within HORIZON_DAYS (e.g. a number spanning zones 15 hours apart).
    """
    key = tuple(sorted(set(zones)))
    if not key:
        raise ValueError("at least one time zone is needed")
    day = at_ms // DAY_MS
    intervals = _allowed(hours, key, day)
    # Intervals are sorted and disjoint: the first one ending after at_ms is the answer.
    index = bisect.bisect_right(intervals, at_ms, key=lambda iv: iv[1])
    if index == len(intervals):
        return None
    start, end = intervals[index]
    opening = max(start, at_ms)
    if opening >= at_ms + HORIZON_DAYS * DAY_MS:
        return None
    return Opening(opening, end)


@lru_cache(maxsize=4096)
def _allowed(hours: CallingHours, zones: tuple[str, ...], day: int) -> list[Interval]:
    """Allowed intervals from one UTC day before `day` to HORIZON_DAYS + 2 days after it (cached per UTC day)."""
    start_ms = (day - 1) * DAY_MS
    end_ms = (day + HORIZON_DAYS + 2) * DAY_MS
    result: list[Interval] | None = None
    for zone in zones:
        mine = zone_intervals(hours, zone, start_ms, end_ms)
        result = mine if result is None else intersect(result, mine)
    return result or []


def zone_intervals(hours: CallingHours, zone: str, start_ms: int, end_ms: int) -> list[Interval]:
    """The instants in [start_ms, end_ms) inside `hours` on `zone`'s wall clock, as sorted disjoint intervals."""
    start_s, end_s = _local_seconds(hours.start), _local_seconds(hours.end)
    pieces: list[Interval] = []
    for span_start, span_end, offset_s in offset_spans(zone, start_ms // 1000, -(-end_ms // 1000)):
        first_day = (span_start + offset_s) // 86400
        last_day = (span_end - 1 + offset_s) // 86400
        for local_day in range(first_day, last_day + 1):
            if (local_day + 3) % 7 not in hours.days:  # 1970-01-01 (day 0) was a Thursday (weekday 3)
                continue
            lo = max(span_start, local_day * 86400 + start_s - offset_s)
            hi = min(span_end, local_day * 86400 + end_s - offset_s)
            if lo < hi:
                pieces.append((lo * 1000, hi * 1000))
    clipped = [(max(a, start_ms), min(b, end_ms)) for a, b in pieces]
    return _merge([iv for iv in clipped if iv[0] < iv[1]])


def offset_spans(zone: str, start_s: int, end_s: int) -> list[tuple[int, int, int]]:
    """[(span_start_s, span_end_s, utc_offset_s)] covering [start_s, end_s): where the zone's offset is constant."""
    tz = _zone(zone)
    spans: list[tuple[int, int, int]] = []
    span_start, offset = start_s, _offset(tz, start_s)
    probe = start_s
    while probe < end_s:
        nxt = min(probe + HOUR_S, end_s)
        nxt_offset = _offset(tz, nxt) if nxt < end_s else offset
        if nxt_offset != offset:
            change = _first_change(tz, probe, nxt, offset)
            spans.append((span_start, change, offset))
            span_start, offset = change, _offset(tz, change)
            probe = change
            continue
        probe = nxt
    spans.append((span_start, end_s, offset))
    return spans


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Intersection of two sorted lists of disjoint intervals."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _first_change(tz: ZoneInfo, lo: int, hi: int, offset: int) -> int:
    """The first second in (lo, hi] whose offset differs from `offset` (offset at lo is `offset`)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == offset:
            lo = mid
        else:
            hi = mid
    return hi


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _offset(tz: ZoneInfo, epoch_s: int) -> int:
    delta = datetime.fromtimestamp(epoch_s, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _local_seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_iso(at_ms: int, zone: str) -> str:
    """An instant as the zone's wall clock shows it, e.g. 2026-03-08T09:00:00-04:00 (for messages)."""
    return datetime.fromtimestamp(at_ms / 1000, _zone(zone)).isoformat(timespec="seconds")


def utc_iso(at_ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)).isoformat(timespec="seconds")
