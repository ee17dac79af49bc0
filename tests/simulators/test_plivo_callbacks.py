"""Plivo simulator: scripted outcomes and callbacks, signed so that plivo's own validator accepts them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from plivo.utils.signature_v3 import validate_v3_signature

from local.simulators.signing import sign_v3
from tests.simulators.conftest import AUTH_TOKEN, Received, Receiver
from tests.simulators.test_plivo_api import DEST, HOLD, call_body, script, sim_call


def valid(request: Received) -> bool:
    return bool(
        validate_v3_signature(
            request.method,
            request.url,
            request.headers["x-plivo-signature-v3-nonce"],
            AUTH_TOKEN,
            request.headers["x-plivo-signature-v3"],
            dict(request.params),
        )
    )


@pytest.mark.parametrize(
    "url",
    ["https://q.example/api/webhooks/plivo/hangup", "https://q.example/api/webhooks/plivo/hangup?call_id=a%20b&x=1"],
)
@pytest.mark.parametrize("params", [{}, {"CallUUID": "u-1", "CallStatus": "completed", "To": "15550100001"}])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signature_matches_plivo_validator(url: str, params: dict[str, str], method: str) -> None:
    signature = sign_v3(AUTH_TOKEN, method, url, params, "12345")
    assert validate_v3_signature(method, url, "12345", AUTH_TOKEN, signature, dict(params))
    assert not validate_v3_signature(method, url, "12345", "other-token", signature, dict(params))


def test_full_lifecycle_sends_signed_ring_answer_hangup_keeping_the_query(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, DEST, answer_after=2, talk_for=5)
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    until(lambda: receiver.on("/hangup"))
    ring, answer, hangup = receiver.on("/ring")[0], receiver.on("/answer")[0], receiver.on("/hangup")[0]
    assert [r.path for r in receiver.requests] == ["/ring", "/answer", "/hangup"]
    for request in (ring, answer, hangup):
        assert valid(request)
        assert request.params["RequestUUID"] == request_uuid and request.params["Direction"] == "outbound"
    assert "call_id=abc" in ring.url and "call_id=abc" in hangup.url
    assert ring.params["CallStatus"] == "ringing" and answer.params["CallStatus"] == "in-progress"
    assert hangup.params["CallUUID"] == ring.params["CallUUID"] == sim_call(plivo, request_uuid)["call_uuid"]
    expected = {"CallStatus": "completed", "HangupCauseName": "Normal Hangup", "HangupCauseCode": "4000",
                "Duration": "5", "BillDuration": "5", "From": "15550009999", "To": "15550100001"}  # fmt: skip
    assert expected.items() <= hangup.params.items()
    for name in ("HangupCause", "HangupSource", "StartTime", "AnswerTime", "EndTime"):
        assert hangup.params[name]


@pytest.mark.parametrize(
    ("outcome", "status", "rings"),
    [("busy", "busy", False), ("no_answer", "no-answer", True), ("failed", "failed", False),
     ("canceled", "cancel", True), ("timeout", "timeout", False)],
)  # fmt: skip
def test_unconnected_outcomes_still_send_a_hangup(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any],
    outcome: str, status: str, rings: bool,
) -> None:  # fmt: skip
    script(plivo, DEST, outcome=outcome)
    rest.post("Call/", json=call_body(receiver))
    hangup = until(lambda: receiver.on("/hangup"))[0]
    assert hangup.params["CallStatus"] == status and hangup.params["Duration"] == "0" and valid(hangup)
    assert hangup.params["AnswerTime"] == ""
    assert bool(receiver.on("/ring")) is rings and not receiver.on("/answer")


def test_ring_timeout_turns_a_late_answer_into_no_answer(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, DEST, answer_after=30)
    rest.post("Call/", json=call_body(receiver, ring_timeout="10"))
    assert until(lambda: receiver.on("/hangup"))[0].params["CallStatus"] == "no-answer"


def test_callback_modes_drop_duplicate_late_and_out_of_order(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, "+15550100011", callbacks={"ring": "drop", "hangup": "duplicate"})
    script(plivo, "+15550100012", callbacks={"ring": "late:20"}, answer_after=0, talk_for=0)
    script(plivo, "+15550100013", out_of_order=True)
    for to in ("+15550100011", "+15550100012", "+15550100013"):
        rest.post("Call/", json=call_body(receiver, to=to))

    def events(to: str) -> list[str]:
        return [r.path for r in receiver.requests if r.params.get("To") == to.lstrip("+") and r.path != "/answer"]

    until(lambda: len(events("+15550100011")) == 2 and len(events("+15550100012")) == 2)
    until(lambda: len(events("+15550100013")) == 2)
    assert events("+15550100011") == ["/hangup", "/hangup"]  # ring dropped, hang-up delivered twice
    assert events("+15550100012") == ["/hangup", "/ring"]  # ring 20 script-seconds late
    assert events("+15550100013") == ["/hangup", "/ring"]  # hang-up sent before ring
    assert all(valid(r) for r in receiver.requests)


def test_list_script_is_used_one_entry_per_call(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    httpx.post(f"{plivo}/_sim/scripts", json={"to": DEST, "script": [{"outcome": "busy"}, {"talk_for": 1}]})
    for _ in range(3):
        rest.post("Call/", json=call_body(receiver))
    until(lambda: len(receiver.on("/hangup")) == 3)
    assert sorted(r.params["CallStatus"] for r in receiver.on("/hangup")) == ["busy", "completed", "completed"]


def test_invisible_for_hides_a_fresh_call_from_every_lookup(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    """Two calls, each holding its state while it is looked up: one stays invisible, one turns visible while it is
    still queued (the second: a call held in the queue holds back the ones after it)."""
    hidden_to, shows_to = "+15550100021", "+15550100022"
    script(plivo, hidden_to, invisible_for=HOLD)
    script(plivo, shows_to, invisible_for=15, queue_for=HOLD)
    hidden = rest.post("Call/", json=call_body(receiver, to=hidden_to)).json()["request_uuid"]
    assert sim_call(plivo, hidden)["request_uuid"] == hidden, "the call exists, lookups do not show it"
    assert rest.get(f"Call/{hidden}/", params={"status": "queued"}).status_code == 404
    assert hidden not in rest.get("Call/", params={"status": "queued"}).json()["calls"]
    shows = rest.post("Call/", json=call_body(receiver, to=shows_to)).json()["request_uuid"]
    queued = until(lambda: rest.get(f"Call/{shows}/", params={"status": "queued"}).status_code == 200)
    assert queued and sim_call(plivo, shows)["status"] == "queued"
