"""Phone numbers: E.164 validation with the messages the API returns, and the time zones a number belongs to.

One implementation for the single-call API, bulk enqueue and the planner. Validation and zone lookup share one
parse and one number-type classification (phonenumbers' is_valid_number and time_zones_for_number would each
classify again), which is most of the cost of a bulk request.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType
from phonenumbers.phonenumberutil import region_code_for_country_code
from phonenumbers.timezone import time_zones_for_geographical_number

UNKNOWN_ZONE = "Etc/Unknown"
EXAMPLE = "+14155550100"


class InvalidPhone(ValueError):
    """The message says what is wrong and how to write the number instead."""


def parse_e164(value: str) -> tuple[str, PhoneNumber, int]:
    """(E.164 form, parsed number, number type) of a dialable number; InvalidPhone otherwise."""
    if not isinstance(value, str) or not value.startswith("+"):
        raise InvalidPhone(f"must be in E.164 form with a leading '+' and country code, e.g. {EXAMPLE}")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"is not a phone number ({exc}); use E.164, e.g. {EXAMPLE}") from None
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN or region_code_for_country_code(number.country_code or 0) == "ZZ":
        raise InvalidPhone(f"is not a valid, dialable number for its country; use E.164, e.g. {EXAMPLE}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number, kind


def normalize(value: str) -> str:
    """The E.164 form of a valid number (InvalidPhone otherwise)."""
    return parse_e164(value)[0]


def time_zones(number: PhoneNumber, kind: int) -> tuple[str, ...]:
    """The zones phonenumbers' data gives the number (by area code for fixed lines and mobiles, else its
    country's); empty when it cannot tell. A ported or roaming mobile may be elsewhere: see docs/campaigns.md."""
    if phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        zones = time_zones_for_geographical_number(number)
    else:
        zones = phonenumbers.timezone._country_level_time_zones_for_number(number)
    return () if tuple(zones) == (UNKNOWN_ZONE,) else tuple(zones)
