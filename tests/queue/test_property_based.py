"""Property-based: schemathesis drives every route of the OpenAPI schema against the app (in this process, on a real
Redis). Every answer must be no server error and conform to the schema: status code documented for the route,
body valid against its documented schema, content type and headers as declared.

Deterministic and bounded: hypothesis is derandomized (a fixed seed per test) with EXAMPLES_PER_ROUTE examples per
route and no example database, so CI cannot find a new case at random. Phone numbers are generated from the
numbering plans' example numbers and time zones from the IANA database, so bodies pass validation and reach the
store; path ids (calls, campaigns, suppressed numbers) are drawn half from ones that exist, so reads, controls and
cancels meet real records; callbacks come with forged signature headers and form bodies. The test asserts the
budget does exercise the store.

Two routes have rules a JSON schema cannot state, so schema-valid input may rightly be refused there (422): a
campaign's calling hours must start before they end and its breaker's min_attempts must not exceed its window;
a bulk item needs flow_name in its own call_config or the request's, and a CSV body's rows are free text. For those
two the "valid data is accepted" check is replaced by one that every 422 to a JSON body names only such a rule
(CROSS_FIELD_RULES).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from callqueue.api.app import create_app
from callqueue.api.models import E164_PATTERN
from callqueue.campaigns.models import TIME_ZONE_FORMAT, TIME_ZONE_MAX
from callqueue.settings import load_settings
from local.simulators.server import running

EXAMPLES_PER_ROUTE = 60
PUT_CAMPAIGN = "PUT /api/campaigns/{campaign_id}"
BULK = "POST /api/campaigns/{campaign_id}/calls"
CROSS_FIELD_RULES = {
    PUT_CAMPAIGN: ("must be before end", "must not exceed window"),
    BULK: ("flow_name: required",),
}


def dialable_numbers() -> list[str]:
    """A valid E.164 number for every region whose numbering plan has an example."""
    numbers = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and phonenumbers.is_valid_number(example):
                numbers.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(n for n in numbers if re.fullmatch(E164_PATTERN, n))


def refused_only_for_cross_field_rules(label: str, case: Any, response: Any) -> None:
    if response.status_code != 422 or (case.media_type or "").startswith("text/csv"):
        return
    body = response.json()
    rules = [f"{e.get('field')}: {e.get('rule')}" for e in body["errors"]] or [body["message"]]
    broken = [r for r in rules if not any(allowed in r for allowed in CROSS_FIELD_RULES[label])]
    assert not broken, f"{label}: schema-valid input refused for {broken}"


def test_every_route_answers_within_its_schema_and_never_a_server_error(redis_url: str, key_prefix: str) -> None:
    numbers = dialable_numbers()
    assert len(numbers) > 200
    schemathesis.openapi.format("e164", st.sampled_from(numbers))
    zones = sorted(z for z in available_timezones() if len(z) <= TIME_ZONE_MAX)
    schemathesis.openapi.format(TIME_ZONE_FORMAT, st.sampled_from(zones))
    # Room for the single-call route's ~40 valid bodies and the bulk route's items: both reach the store, and the
    # bulk route also meets the limit (items refused `queue_full`).
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0", "MAX_QUEUED_CALLS": "60",
           "PLIVO_AUTH_ID": "MAPROP", "PLIVO_AUTH_TOKEN": "tok"}  # fmt: skip
    seen: Counter[tuple[str, int]] = Counter()
    known: list[str] = []
    campaigns: list[str] = []
    suppressed: list[str] = []
    bulk_accepted = 0
    with running(create_app(load_settings(env), background=False)) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the schema has an invalid operation: {result}"
            operations.append(result.ok())
        for operation in operations:

            @settings(max_examples=EXAMPLES_PER_ROUTE, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(), data=st.data())
            def exercise(case: Any, data: st.DataObject) -> None:
                nonlocal bulk_accepted
                label = case.operation.label
                for name, pool in (("call_id", known), ("campaign_id", campaigns), ("phone_number", suppressed)):
                    if pool and name in (case.path_parameters or {}) and data.draw(st.booleans()):
                        case.path_parameters[name] = data.draw(st.sampled_from(pool))
                response = case.call(base_url=base)
                if label in CROSS_FIELD_RULES:
                    case.validate_response(response, excluded_checks=[positive_data_acceptance])
                    refused_only_for_cross_field_rules(label, case, response)
                else:
                    case.validate_response(response)
                seen[(label, response.status_code)] += 1
                if label == "POST /api/calls/queue" and response.status_code == 202:
                    known.append(response.json()["call_id"])
                if label in (PUT_CAMPAIGN, BULK) and response.status_code == 200:
                    campaigns.append(case.path_parameters["campaign_id"])
                if label == BULK and response.status_code == 200:
                    bulk_accepted += response.json()["accepted"]
                if label == "POST /api/suppressions" and response.status_code == 200:
                    suppressed.extend(response.json()["numbers"])

            exercise()
    cases = sum(seen.values())
    print(f"\nproperty-based: {cases} cases over {len(operations)} routes: {dict(sorted(seen.items()))}")
    print(f"bulk items accepted: {bulk_accepted}")
    labels = {operation.label for operation in operations}
    assert {"POST /api/calls/queue", "GET /api/calls/{call_id}", "POST /api/calls/{call_id}/cancel"} <= labels
    operator_routes = {"GET /metrics", "GET /operator/", "GET /api/operator/overview"}
    assert operator_routes <= labels, "issue 14's routes are in the schema, so they are fuzzed too"
    for label in operator_routes:
        assert seen[(label, 200)] >= 1, f"{label} must answer"
    assert seen[("GET /api/live", 200)] >= 1, "issue 11's liveness route is in the schema and answers"
    assert not [key for key in seen if key[1] >= 500]
    assert seen[("POST /api/calls/queue", 202)] >= 20, "bodies must reach the store"
    assert seen[("GET /api/calls/{call_id}", 200)] >= 10, "reads must meet real records"
    assert seen[("POST /api/calls/{call_id}/cancel", 200)] >= 5, "cancels must meet real records"
    assert seen[("POST /api/webhooks/plivo/hangup", 403)] >= 20, "forged callbacks must reach the signature check"
    campaign_routes = {PUT_CAMPAIGN, BULK, "GET /api/campaigns", "GET /api/campaigns/{campaign_id}"} | {
        f"POST /api/campaigns/{{campaign_id}}/{action}" for action in ("pause", "resume", "cancel")
    }
    suppression_routes = {"POST /api/suppressions", "GET /api/suppressions/{phone_number}",
                          "DELETE /api/suppressions/{phone_number}"}  # fmt: skip
    assert campaign_routes | suppression_routes <= labels, "issue 13's routes are fuzzed too"
    assert seen[(PUT_CAMPAIGN, 200)] >= 10, "campaign settings must reach the store"
    assert seen[(BULK, 200)] >= 5 and bulk_accepted >= 10, "bulk items must reach the store"
    assert seen[("GET /api/campaigns/{campaign_id}", 200)] >= 10, "campaign reads must meet real campaigns"
    for action in ("pause", "resume", "cancel"):
        assert seen[(f"POST /api/campaigns/{{campaign_id}}/{action}", 200)] >= 3, f"{action} must meet campaigns"
    assert seen[("POST /api/suppressions", 200)] >= 10, "numbers must reach the suppression list"
    assert seen[("GET /api/suppressions/{phone_number}", 200)] >= 3, "suppression reads must meet listed numbers"
