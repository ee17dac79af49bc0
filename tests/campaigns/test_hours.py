"""Calling-hours arithmetic: examples across DST changes, and properties checked against each zone's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_zones

from callqueue.campaigns.hours import DAY_MS, HORIZON_DAYS, CallingHours, is_open, next_opening, offset_spans

NINE_TO_EIGHT = CallingHours(time(9), time(20))
STEP_MS = 5 * 60_000  # every boundary below lies on a 5-minute grid: windows are on it, offsets are 15-minute multiples


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def wall(at_ms: int, zone: str) -> str:
    return datetime.fromtimestamp(at_ms / 1000, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z")


def test_inside_the_window_opens_now_and_closes_at_the_local_end() -> None:
    at = ms(2026, 7, 1, 10, 30, "America/New_York")
    opening = next_opening(NINE_TO_EIGHT, ["America/New_York"], at)
    assert opening is not None and opening.open_ms == at
    assert wall(opening.close_ms, "America/New_York") == "2026-07-01 20:00 -0400"


def test_after_hours_waits_for_the_next_local_morning() -> None:
    at = ms(2026, 7, 1, 20, 0, "America/New_York")  # the end is exclusive: 20:00 is already outside
    opening = next_opening(NINE_TO_EIGHT, ["America/New_York"], at)
    assert opening is not None and wall(opening.open_ms, "America/New_York") == "2026-07-02 09:00 -0400"


def test_days_of_week_skip_to_monday() -> None:
    weekdays = CallingHours(time(9), time(20), frozenset(range(5)))
    at = ms(2026, 7, 3, 21, 0, "Europe/Paris")  # a Friday evening
    opening = next_opening(weekdays, ["Europe/Paris"], at)
    assert opening is not None and wall(opening.open_ms, "Europe/Paris") == "2026-07-06 09:00 +0200"


def test_spring_forward_gap_opens_at_the_first_valid_instant() -> None:
    # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; a 02:30–03:30 window opens when the clock shows 03:00.
    hours = CallingHours(time(2, 30), time(3, 30))
    opening = next_opening(hours, ["America/New_York"], ms(2026, 3, 8, 0, 0, "America/New_York"))
    assert opening is not None
    assert wall(opening.open_ms, "America/New_York") == "2026-03-08 03:00 -0400"
    assert wall(opening.close_ms, "America/New_York") == "2026-03-08 03:30 -0400"


def test_fall_back_repeat_gives_two_stretches_the_same_day() -> None:
    # New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:00–01:30 happens twice, both are calling hours.
    hours = CallingHours(time(1), time(1, 30))
    first = next_opening(hours, ["America/New_York"], ms(2026, 11, 1, 0, 0, "America/New_York"))
    assert first is not None
    assert (wall(first.open_ms, "America/New_York"), wall(first.close_ms, "America/New_York")) == (
        "2026-11-01 01:00 -0400",
        "2026-11-01 01:30 -0400",
    )
    second = next_opening(hours, ["America/New_York"], first.close_ms)
    assert second is not None
    assert (wall(second.open_ms, "America/New_York"), wall(second.close_ms, "America/New_York")) == (
        "2026-11-01 01:00 -0500",
        "2026-11-01 01:30 -0500",
    )


def test_the_dst_day_is_23_hours_long_and_the_window_still_spans_local_9_to_20() -> None:
    at = ms(2026, 3, 29, 0, 0, "Europe/London")  # clocks go forward at 01:00 GMT
    opening = next_opening(NINE_TO_EIGHT, ["Europe/London"], at)
    assert opening is not None
    assert wall(opening.open_ms, "Europe/London") == "2026-03-29 09:00 +0100"
    assert opening.close_ms - opening.open_ms == 11 * 3_600_000


def test_a_number_spanning_zones_is_called_only_when_every_zone_is_inside() -> None:
    zones = ["America/New_York", "America/Los_Angeles"]
    opening = next_opening(NINE_TO_EIGHT, zones, ms(2026, 7, 1, 8, 0, "America/New_York"))
    assert opening is not None
    assert wall(opening.open_ms, "America/Los_Angeles") == "2026-07-01 09:00 -0700"  # 12:00 in New York
    assert wall(opening.close_ms, "America/New_York") == "2026-07-01 20:00 -0400"  # 17:00 in Los Angeles


def test_zones_that_never_share_calling_hours_give_none() -> None:
    # A North American toll-free number maps to every NANP zone, Guam (UTC+10) to Pago Pago (UTC-11).
    zones = phone_zones.time_zones_for_number(phonenumbers.parse("+18005550100"))
    assert "Pacific/Guam" in zones and "Pacific/Pago_Pago" in zones
    assert next_opening(NINE_TO_EIGHT, zones, ms(2026, 7, 1)) is None


def test_lord_howe_half_hour_dst_change() -> None:
    # Lord Howe Island moves from +11:00 to +10:30 on 2026-04-05 at 02:00 local.
    spans = offset_spans("Australia/Lord_Howe", ms(2026, 4, 4) // 1000, ms(2026, 4, 6) // 1000)
    assert [s[2] for s in spans] == [39600, 37800]
    hours = CallingHours(time(1, 40), time(1, 50))  # 01:30–02:00 repeats that night
    first = next_opening(hours, ["Australia/Lord_Howe"], ms(2026, 4, 4, 12))
    assert first is not None
    second = next_opening(hours, ["Australia/Lord_Howe"], first.close_ms)
    assert second is not None and second.open_ms - first.open_ms == 30 * 60_000


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [(time(20), time(9), frozenset(range(7))), (time(9), time(9), frozenset({0})), (time(9), time(20), frozenset())],
)
def test_invalid_hours_are_refused_with_the_reason(start: time, end: time, days: frozenset[int]) -> None:
    with pytest.raises(ValueError, match=r"before end|non-empty"):
        CallingHours(start, end, days)


# --- properties, across DST changes ----------------------------------------------------------------------------

ZONES = [
    "America/New_York",  # US DST
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30, DST
    "America/Santiago",  # southern hemisphere DST
    "Europe/London",
    "Europe/Dublin",  # "negative" DST in tzdata
    "Europe/Paris",
    "Australia/Lord_Howe",  # 30-minute DST
    "Australia/Adelaide",  # +09:30 with DST
    "Asia/Kathmandu",  # +05:45
    "Asia/Kolkata",  # no DST
    "Pacific/Chatham",  # +12:45 with DST
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]
# Days around which DST changes cluster (northern and southern), plus Samoa's skipped day.
CHANGE_DAYS = [(3, 8), (3, 29), (4, 5), (9, 6), (9, 27), (10, 4), (10, 25), (11, 1), (12, 29)]


@st.composite
def instants(draw: st.DrawFn) -> int:
    year = draw(st.integers(2011, 2030))
    month, day = draw(st.sampled_from(CHANGE_DAYS))
    base = int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)
    return base + draw(st.integers(-3 * DAY_MS, 3 * DAY_MS))


@st.composite
def calling_hours(draw: st.DrawFn) -> CallingHours:
    start = draw(st.integers(0, 24 * 12 - 2)) * 5  # minutes, on the 5-minute grid
    end = draw(st.integers(start // 5 + 1, 24 * 12 - 1)) * 5
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return CallingHours(time(start // 60, start % 60), time(end // 60, end % 60), days)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    hours=calling_hours(),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
    at=instants(),
)
def test_next_opening_is_the_first_allowed_instant_and_its_close_is_exact(
    hours: CallingHours, zones: list[str], at: int
) -> None:
    opening = next_opening(hours, zones, at)
    grid = -(-at // STEP_MS) * STEP_MS  # first grid point at or after `at`
    end = opening.open_ms if opening else at + HORIZON_DAYS * DAY_MS
    # Nothing before the opening is allowed: `at` itself and every grid point up to it.
    assert opening is not None or not is_open(hours, zones, at)
    if opening is None or opening.open_ms > at:
        assert not is_open(hours, zones, at)
        assert not any(is_open(hours, zones, t) for t in range(grid, end, STEP_MS))
    if opening is None:
        return
    assert opening.open_ms >= at
    assert is_open(hours, zones, opening.open_ms)
    # Every instant of the stretch is inside, and the close is the first instant outside.
    assert all(is_open(hours, zones, t) for t in range(opening.open_ms, opening.close_ms, STEP_MS))
    assert is_open(hours, zones, opening.close_ms - 1)
    assert not is_open(hours, zones, opening.close_ms)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(zone=st.sampled_from(ZONES), at=instants())
def test_offset_spans_agree_with_the_zone_at_every_hour(zone: str, at: int) -> None:
    start_s = at // 1000
    spans = offset_spans(zone, start_s, start_s + 4 * 86400)
    assert spans[0][0] == start_s and spans[-1][1] == start_s + 4 * 86400
    tz = ZoneInfo(zone)
    for span_start, span_end, offset in spans:
        for t in (span_start, (span_start + span_end) // 2, span_end - 1):
            shown = datetime.fromtimestamp(t, tz).utcoffset()
            assert shown == timedelta(seconds=offset)
