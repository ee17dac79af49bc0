"""Request and response bodies of the public API; validation errors name the field and the rule."""

from __future__ import annotations

import math
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callqueue.ids import CALL_ID_PATTERN

FLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# E.164: '+', a country code that does not start with 0, at most 15 digits in all. The schema states the form; the
# validator also checks the number is dialable for its country (and accepts spaces or dashes, normalising them).
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# How deep call_config may nest (objects and arrays inside it); its size is bounded by MAX_BODY_BYTES.
CALL_CONFIG_MAX_DEPTH = 8


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


def call_config_problems(config: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(location inside call_config, rule broken) for every value the agent could not be sent as JSON."""
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def walk(value: Any, loc: tuple[str | int, ...], depth: int) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            problems.append((loc, "must be a finite number: NaN, Infinity and numbers beyond ±1.8e308 are not JSON"))
        elif isinstance(value, dict | list):
            if depth > CALL_CONFIG_MAX_DEPTH:
                problems.append((loc, f"nests too deep: call_config allows at most {CALL_CONFIG_MAX_DEPTH} levels"))
                return
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                walk(item, (*loc, key), depth + 1)

    for key, value in config.items():
        walk(value, (key,), 1)
    return problems


class QueueCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str = Field(
        description="destination in E.164, e.g. +14155550100; must be a valid, dialable number for its country",
        examples=["+919123456789"],
        json_schema_extra={"pattern": E164_PATTERN, "format": "e164"},
    )
    campaign_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    call_config: CallConfig

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.startswith("+"):
            raise ValueError("must be in E.164 form with a leading '+' and country code, e.g. +14155550100")
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"is not a phone number ({exc}); use E.164, e.g. +14155550100") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("is not a valid, dialable number for its country; use E.164, e.g. +14155550100")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class QueuedCall(BaseModel):
    call_id: str = Field(pattern=CALL_ID_PATTERN)
    status: str
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key is returned")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the service: a code, a sentence saying what is wrong and how to fix it, details."""

    error: str = Field(description="machine-readable code, e.g. validation_error, queue_full, dependency_unavailable")
    message: str = Field(description="what is wrong and how to fix it")
    errors: list[dict[str, Any]] = Field(
        description="details: for validation errors one {field, rule} per problem; for 503 the failing dependency"
    )
