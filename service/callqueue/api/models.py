"""Request and response bodies of the public API; validation errors name the field and the rule."""

from __future__ import annotations

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

FLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class CallConfig(BaseModel):
    """`flow_name` selects the agent's conversation flow; any other JSON fields go to the agent unchanged."""

    model_config = ConfigDict(extra="allow")

    flow_name: str = Field(min_length=1, max_length=128, pattern=FLOW_NAME_PATTERN)


class QueueCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str = Field(description="destination in E.164, e.g. +14155550100", examples=["+919123456789"])
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
    call_id: str
    status: str
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key is returned")
