"""Campaign settings and per-call overrides as the API takes them; validation errors name the field and the rule."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callqueue.campaigns.hours import DAY_NAMES, CallingHours
from callqueue.ids import MAX_ATTEMPTS

DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Retryable = Literal["busy", "no_answer", "failed", "missed"]
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ALL_DAYS: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_ON: tuple[Retryable, ...] = ("busy", "no_answer", "failed")
MAX_WAIT_S = 7 * 86400
# The schema's name for an IANA time zone name (validated by check_time_zone): clients and fuzzers see the rule.
TIME_ZONE_FORMAT = "iana-time-zone"
TIME_ZONE_MAX = 64
TimeZoneName = Annotated[str, Field(max_length=TIME_ZONE_MAX, json_schema_extra={"format": TIME_ZONE_FORMAT})]


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone; use a name like America/New_York") from None
    return value


class CallingHoursSettings(BaseModel):
    """Local wall-clock window, applied in each number's own time zone(s). US example: TCPA allows 08:00–21:00."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(
        examples=["09:00"], description="HH:MM local time, inclusive", json_schema_extra={"pattern": HHMM.pattern}
    )
    end: str = Field(
        examples=["20:00"],
        description="HH:MM local time, exclusive; after start, same day",
        json_schema_extra={"pattern": HHMM.pattern},
    )
    days: list[DayName] = Field(default_factory=lambda: list(ALL_DAYS), min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError("must be HH:MM (24-hour), e.g. 09:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CallingHoursSettings:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end} (a window within one day)")
        return self

    def to_hours(self) -> CallingHours:
        def parse(value: str) -> time:
            hour, minute = value.split(":")
            return time(int(hour), int(minute))

        return CallingHours(parse(self.start), parse(self.end), frozenset(DAY_NAMES.index(d) for d in self.days))


class RetryPolicy(BaseModel):
    """Redial by outcome: which outcomes, how many attempts in all (1 = never redial), the wait before each."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS, description="dial attempts in all, the first included")
    on: list[Retryable] = Field(
        default_factory=lambda: list(DEFAULT_ON),
        description="outcomes that are redialled; a failed attempt with an invalid or barred number never is",
    )
    waits_s: list[Annotated[int, Field(ge=0, le=MAX_WAIT_S)]] = Field(
        default_factory=lambda: [600],
        min_length=1,
        max_length=MAX_ATTEMPTS,
        description=f"seconds to wait before attempt 2, 3, …, each 0 to {MAX_WAIT_S}; the last value repeats",
    )

    def wait_ms(self, next_attempt: int) -> int:
        """The wait before dial attempt `next_attempt` (2, 3, …)."""
        return self.waits_s[min(max(next_attempt - 2, 0), len(self.waits_s) - 1)] * 1000


class BreakerSettings(BaseModel):
    """Pause the campaign when at least `failure_ratio` of its last `window` dialled attempts failed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    window: int = Field(default=20, ge=2, le=1000, description="how many of the latest dialled attempts are looked at")
    min_attempts: int = Field(
        default=10, ge=1, le=1000, description="no decision before this many attempts in the window"
    )
    failure_ratio: float = Field(default=0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _min_within_window(self) -> BreakerSettings:
        if self.min_attempts > self.window:
            raise ValueError(f"min_attempts {self.min_attempts} must not exceed window {self.window}")
        return self


class CampaignSettings(BaseModel):
    """A campaign's settings; a campaign nobody configured uses these defaults (dial any time, never redial)."""

    model_config = ConfigDict(extra="forbid")

    calling_hours: CallingHoursSettings | None = Field(
        default=None, description="null: no window (dial at any time). Set it for any campaign that calls people."
    )
    time_zone: TimeZoneName | None = Field(
        default=None, description="zone for numbers whose own zone cannot be told from the number (IANA name)"
    )
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy())
    max_concurrent_calls: int | None = Field(default=None, ge=1, description="this campaign's calls in flight at most")
    dispatch_rate: int | None = Field(default=None, ge=1, description="this campaign's starts per second at most")
    weight: int = Field(default=1, ge=1, le=100, description="share of starts against other campaigns with calls ready")
    breaker: BreakerSettings = Field(default_factory=lambda: BreakerSettings())

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return check_time_zone(value) if value is not None else None
