"""Property-based: schemathesis drives every route of the OpenAPI schema against the app (in this process, on a real
Redis). Every answer must be no server error and conform to the schema: status code documented for the route,
body valid against its documented schema, content type and headers as declared.

Deterministic and bounded: hypothesis is derandomized (a fixed seed per test) with EXAMPLES_PER_ROUTE examples per
route and no example database, so CI cannot find a new case at random. Phone numbers are generated from the
numbering plans' example numbers, so bodies pass validation and reach the store; path ids are drawn half from calls
that exist, so reads and cancels meet real records; callbacks come with forged signature headers and form bodies.
The test asserts the budget does exercise the store.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import phonenumbers
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from callqueue.api.app import create_app
from callqueue.api.models import E164_PATTERN
from callqueue.settings import load_settings
from local.simulators.server import running

EXAMPLES_PER_ROUTE = 60


def dialable_numbers() -> list[str]:
    """A valid E.164 number for every region whose numbering plan has an example."""
    numbers = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and phonenumbers.is_valid_number(example):
                numbers.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(n for n in numbers if re.fullmatch(E164_PATTERN, n))


def test_every_route_answers_within_its_schema_and_never_a_server_error(redis_url: str, key_prefix: str) -> None:
    numbers = dialable_numbers()
    assert len(numbers) > 200
    schemathesis.openapi.format("e164", st.sampled_from(numbers))
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0", "MAX_QUEUED_CALLS": "40",
           "PLIVO_AUTH_ID": "MAPROP", "PLIVO_AUTH_TOKEN": "tok"}  # fmt: skip
    seen: Counter[tuple[str, int]] = Counter()
    known: list[str] = []
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
                if known and case.path_parameters and "call_id" in case.path_parameters and data.draw(st.booleans()):
                    case.path_parameters["call_id"] = data.draw(st.sampled_from(known))
                response = case.call(base_url=base)
                case.validate_response(response)
                seen[(case.operation.label, response.status_code)] += 1
                if case.operation.label == "POST /api/calls/queue" and response.status_code == 202:
                    known.append(response.json()["call_id"])

            exercise()
    cases = sum(seen.values())
    print(f"\nproperty-based: {cases} cases over {len(operations)} routes: {dict(sorted(seen.items()))}")
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
