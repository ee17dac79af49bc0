"""Phone numbers: E.164 validation with the messages the API returns, and the time zones a number belongs to.

One implementation for the single-call API, bulk enqueue and the planner. Validation and zone lookup share one
parse and one number-type classification (phonenumbers' is_valid_number and time_zones_for_number would each
classify again), and a number already written +digits skips parse's generic text handling: together most of the
cost of a bulk request. tests/campaigns/test_phones_and_planning.py pins the answers to phonenumbers' own.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType
from phonenumbers.phonenumberutil import (
    _MAX_LENGTH_FOR_NSN,
    _MIN_LENGTH_FOR_NSN,
    COUNTRY_CODE_TO_REGION_CODE,
    ValidationResult,
    _maybe_strip_national_prefix_carrier_code,
    _number_type_helper,
    _set_italian_leading_zeros_for_phone_number,
    _test_number_length,
    national_significant_number,
    region_code_for_country_code,
)
from phonenumbers.re_util import re_compile
from phonenumbers.timezone import time_zones_for_geographical_number

UNKNOWN_ZONE = "Etc/Unknown"
EXAMPLE = "+14155550100"
CANONICAL = re.compile(r"^\+([1-9][0-9]{5,16})$")
_SHORT = (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH)


class InvalidPhone(ValueError):
    """The message says what is wrong and how to write the number instead."""


def _canonical(digits: str) -> PhoneNumber | None:
    """phonenumbers.parse's own steps for a number already written +digits, without its generic text handling
    (extensions, letters, punctuation), which is most of its cost. None: let phonenumbers.parse decide."""
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, region_code_for_country_code(country_code)
    )
    if metadata is None or len(national) < _MIN_LENGTH_FOR_NSN:
        return None
    _, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(stripped, metadata) not in _SHORT:
        national = stripped
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return None
    number = PhoneNumber(country_code=country_code)
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def number_type(number: PhoneNumber) -> int:
    """phonenumbers.number_type, classifying once: for a calling code shared by several regions (+1: the US,
    Canada and the Caribbean) it finds the region by classifying the number, then classifies it again."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0)
    if regions is None:
        return PhoneNumberType.UNKNOWN
    national = national_significant_number(number)
    if len(regions) > 1:
        for region in regions:
            metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
            if metadata is None:
                continue
            if metadata.leading_digits is None:
                kind: int = _number_type_helper(national, metadata)
                if kind != PhoneNumberType.UNKNOWN:
                    return kind
            elif re_compile(metadata.leading_digits).match(national):
                break
        else:
            return PhoneNumberType.UNKNOWN
    else:
        region = regions[0]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code or 0, region)
    return PhoneNumberType.UNKNOWN if metadata is None else int(_number_type_helper(national, metadata))


def parse_e164(value: str) -> tuple[str, PhoneNumber, int]:
    """(E.164 form, parsed number, number type) of a dialable number; InvalidPhone otherwise."""
    if not isinstance(value, str) or not value.startswith("+"):
        raise InvalidPhone(f"must be in E.164 form with a leading '+' and country code, e.g. {EXAMPLE}")
    canonical = CANONICAL.match(value)
    number = _canonical(canonical.group(1)) if canonical else None
    if number is None:
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhone(f"is not a phone number ({exc}); use E.164, e.g. {EXAMPLE}") from None
    kind = number_type(number)
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
