"""One parse per number gives phonenumbers' own answers; a planned call is never due outside its calling hours."""

from __future__ import annotations

import random
from datetime import time

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_zones

from callqueue.campaigns.hours import CallingHours, is_open
from callqueue.campaigns.planning import NoTimeZone, plan_call, zones_for
from callqueue.phones import InvalidPhone, parse_e164, time_zones
from tests.campaigns.test_hours import ZONES, calling_hours, instants

EDGES = [
    "+390612345678",  # Italy: a leading zero that is part of the number
    "+3900612345678",
    "+442079460958",
    "+4402079460958",  # a trunk 0 written after the country code: phonenumbers strips it
    "+78123456789",  # Russia: 8 is also the national prefix
    "+4930123456",  # Germany: variable lengths
    "+49030123456",
    "+12125550100",
    "+112125550100",  # NANP trunk 1 after the country code
    "+80012345678",
    "+999123456",  # no such country code
    "+1234",
]


def test_validity_and_zones_match_phonenumbers_own_functions() -> None:
    rng = random.Random(7)
    valid = 0
    samples = list(EDGES)
    for country in (1, 1, 1, 44, 91, 61, 49, 33, 39, 81, 55, 52, 7, 86, 234, 27, 971, 65, 353, 64, 800, 882):
        samples += [
            f"+{country}" + "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 12))) for _ in range(400)
        ]
    for raw in samples:
        try:
            expected = phonenumbers.is_valid_number(phonenumbers.parse(raw, None))
        except phonenumbers.NumberParseException:
            expected = False
        try:
            e164, number, kind = parse_e164(raw)
        except InvalidPhone:
            assert not expected, raw
            continue
        assert expected, raw
        reference = tuple(phone_zones.time_zones_for_number(number))
        assert time_zones(number, kind) == (() if reference == ("Etc/Unknown",) else reference), raw
        assert e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert number == phonenumbers.parse(raw, None), raw  # the shortcut builds parse's own number
        assert kind == phonenumbers.number_type(number), raw
        valid += 1
    assert valid > 500  # the sample holds enough valid numbers to mean something


def test_zone_sources_in_order() -> None:
    assert zones_for("+12125550100", "Europe/Paris", "Asia/Tokyo") == (("Europe/Paris",), "call")
    assert zones_for("+12125550100", None, "Asia/Tokyo") == (("America/New_York",), "number")
    assert zones_for("+80012345678", None, "Asia/Tokyo") == (("Asia/Tokyo",), "campaign")
    with pytest.raises(NoTimeZone, match="give the call a time_zone"):
        zones_for("+80012345678", None, None)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    hours=calling_hours(),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
    now=instants(),
    wait_s=st.integers(0, 3 * 86400),
)
def test_a_planned_redial_is_due_inside_calling_hours_and_never_before_its_wait(
    hours: CallingHours, zones: list[str], now: int, wait_s: int
) -> None:
    plan = plan_call(hours, zones, now, now + wait_s * 1000, "retry")
    if plan.action == "end":
        return  # these zones share no hours: the call is never dialled (tested in test_hours)
    if plan.action == "queue":
        assert wait_s == 0 and is_open(hours, zones, now)
        assert plan.at_ms is not None and plan.at_ms > now
        return
    assert plan.at_ms is not None and plan.at_ms >= now + wait_s * 1000
    assert is_open(hours, zones, plan.at_ms)
    assert plan.waiting_for == ("retry" if plan.at_ms == now + wait_s * 1000 else "calling_hours")


def test_without_calling_hours_only_the_earliest_time_counts() -> None:
    assert plan_call(None, (), 1_000, None).action == "queue"
    later = plan_call(None, (), 1_000, 5_000, "not_before")
    assert (later.action, later.at_ms, later.waiting_for) == ("wait", 5_000, "not_before")
    assert plan_call(CallingHours(time(9), time(17)), ("UTC",), 0, None).at_ms == 9 * 3_600_000
