"""Request and response bodies of the public API; validation errors name the field and the rule."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from callqueue.call_config import CALL_CONFIG_MAX_DEPTH
from callqueue.campaigns.models import RetryPolicy, TimeZoneName, check_time_zone
from callqueue.ids import CALL_ID_PATTERN, CAMPAIGN_ID_MAX, CAMPAIGN_ID_PATTERN
from callqueue.phones import normalize

FLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# E.164: '+', a country code that does not start with 0, at most 15 digits in all. The schema states the form; the
# validator also checks the number is dialable for its country (and accepts spaces or dashes, normalising them).
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


class CallConfig(BaseModel):
    """`flow_name` selects the agent's conversation flow; any other JSON fields go to the agent unchanged."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "description": (
                "`flow_name` selects the agent's conversation flow; any other JSON fields go to the agent unchanged."
                f" At most {CALL_CONFIG_MAX_DEPTH} levels of nesting; numbers must be finite (no NaN or Infinity);"
                " the whole request body is limited to MAX_BODY_BYTES."
            )
        },
    )

    flow_name: str = Field(min_length=1, max_length=128, pattern=FLOW_NAME_PATTERN)


class QueueCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str = Field(
        description="destination in E.164, e.g. +14155550100; must be a valid, dialable number for its country",
        examples=["+919123456789"],
        json_schema_extra={"pattern": E164_PATTERN, "format": "e164"},
    )
    campaign_id: str = Field(min_length=1, max_length=CAMPAIGN_ID_MAX, pattern=CAMPAIGN_ID_PATTERN)
    call_config: CallConfig
    not_before: AwareDatetime | None = Field(
        default=None, description="not dialled before this instant (ISO 8601 with its offset); the call is scheduled"
    )
    time_zone: TimeZoneName | None = Field(
        default=None, description="the person's IANA time zone for calling hours, instead of the number's"
    )
    retry: RetryPolicy | None = Field(default=None, description="this call's retry policy instead of its campaign's")

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return normalize(value)  # InvalidPhone is a ValueError: the message names the rule

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return check_time_zone(value) if value is not None else None

    def own_options(self) -> dict[str, str]:
        """The call's own scheduling options as call fields (store/attempts.py CALL_FIELDS)."""
        fields: dict[str, str] = {}
        if self.not_before is not None:
            fields["not_before"] = str(int(self.not_before.timestamp() * 1000))
        if self.time_zone is not None:
            fields.update(zones=self.time_zone, zone_source="call")
        if self.retry is not None:
            fields["retry"] = self.retry.model_dump_json()
        return fields


class QueuedCall(BaseModel):
    call_id: str = Field(pattern=CALL_ID_PATTERN)
    status: str = Field(description="queued, or scheduled when it waits for calling hours or its not_before")
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key is returned")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the service: a code, a sentence saying what is wrong and how to fix it, details."""

    error: str = Field(description="machine-readable code, e.g. validation_error, queue_full, dependency_unavailable")
    message: str = Field(description="what is wrong and how to fix it")
    errors: list[dict[str, Any]] = Field(
        description="details: for validation errors one {field, rule} per problem; for 503 the failing dependency"
    )
