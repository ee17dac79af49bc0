"""Plivo simulator: the REST contract (shapes, auth, lookups by request_uuid/call_uuid, list, cancel, hang-up)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.simulators.conftest import AUTH_ID, AUTH_TOKEN, Receiver

DEST = "+15550100001"


def call_body(receiver: Receiver, to: str = DEST, **extra: str) -> dict[str, str]:
    return {
        "from": "+15550009999",
        "to": to,
        "answer_url": f"{receiver.base_url}/answer",
        "ring_url": f"{receiver.base_url}/ring?call_id=abc",
        "hangup_url": f"{receiver.base_url}/hangup?call_id=abc",
        **extra,
    }


def script(plivo: str, to: str | None, **fields: Any) -> None:
    body: dict[str, Any] = {"script": fields} if to is None else {"to": to, "script": fields}
    httpx.post(f"{plivo}/_sim/scripts", json=body).raise_for_status()


def sim_call(plivo: str, some_uuid: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{plivo}/_sim/calls/{some_uuid}").json()
    return answer


def test_create_answers_201_call_fired_with_a_string_request_uuid(rest: httpx.Client, receiver: Receiver) -> None:
    answer = rest.post("Call/", json=call_body(receiver))
    assert answer.status_code == 201
    body = answer.json()
    assert body["message"] == "call fired"
    assert isinstance(body["request_uuid"], str) and body["api_id"]


def test_bulk_create_answers_a_list_and_form_encoding_is_accepted(rest: httpx.Client, receiver: Receiver) -> None:
    answer = rest.post("Call/", data=call_body(receiver, to="+15550100002<+15550100003"))
    assert answer.status_code == 201
    assert len(answer.json()["request_uuid"]) == 2


def test_missing_answer_url_is_a_plivo_style_400(rest: httpx.Client) -> None:
    answer = rest.post("Call/", json={"from": "+1555", "to": DEST})
    assert answer.status_code == 400
    assert set(answer.json()) == {"api_id", "error"}
    assert "answer_url" in answer.json()["error"]


def test_wrong_credentials_are_401(plivo: str) -> None:
    wrong = httpx.get(f"{plivo}/v1/Account/{AUTH_ID}/Call/", auth=(AUTH_ID, "nope"))
    other_account = httpx.get(f"{plivo}/v1/Account/MAOTHER/Call/", auth=(AUTH_ID, AUTH_TOKEN))
    assert wrong.status_code == 401 and other_account.status_code == 401


HOLD = 1_000_000  # script seconds: a phase that outlasts the test, so it is looked up however slow the machine is


def test_lookups_follow_the_call_from_queue_to_detail_record(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    """Each phase is held (HOLD) by its own call while it is looked up: the test waits on states, not windows."""
    ringing_to, talking_to, ended_to, done_to, queued_to = (f"+155501002{n:02d}" for n in range(5))
    script(plivo, ringing_to, answer_after=HOLD)
    script(plivo, talking_to, answer_after=0, talk_for=HOLD)
    script(plivo, ended_to, answer_after=0, talk_for=0, cdr_delay=HOLD)
    script(plivo, done_to, answer_after=0, talk_for=10, cdr_delay=0)
    script(plivo, queued_to, queue_for=HOLD)  # last: a call held in the queue holds back the calls after it

    def create(to: str, **extra: str) -> str:
        return str(rest.post("Call/", json=call_body(receiver, to=to, **extra)).json()["request_uuid"])

    def live(some_uuid: str) -> str | None:
        answer = rest.get(f"Call/{some_uuid}/", params={"status": "live"})
        return str(answer.json()["call_status"]) if answer.status_code == 200 else None

    request_uuid = create(ringing_to, ring_timeout=str(HOLD))  # rings until the test ends
    call_uuid = until(lambda: sim_call(plivo, request_uuid)["call_uuid"])
    assert call_uuid != request_uuid
    assert rest.get(f"Call/{request_uuid}/", params={"status": "queued"}).status_code == 404
    assert until(lambda: live(call_uuid)) == "ringing"

    talking_request = create(talking_to)
    talking = until(lambda: sim_call(plivo, talking_request)["call_uuid"])
    until(lambda: live(talking) == "in-progress")
    assert rest.get(f"Call/{talking}/").status_code == 404  # no detail record while live

    ended_request = create(ended_to)
    ended = until(lambda: sim_call(plivo, ended_request)["status"] == "completed" and sim_call(plivo, ended_request))
    assert live(ended["call_uuid"]) is None
    assert rest.get(f"Call/{ended['call_uuid']}/").status_code == 404  # hung up, record not there yet (cdr_delay)

    done_request = create(done_to)
    done_uuid = until(lambda: sim_call(plivo, done_request)["call_uuid"])
    cdr = until(lambda: (r := rest.get(f"Call/{done_uuid}/")).status_code == 200 and r.json())
    for name in (
        "call_uuid",
        "answer_time",
        "end_time",
        "initiation_time",
        "call_duration",
        "bill_duration",
        "hangup_cause_name",
        "hangup_cause_code",
        "hangup_source",
        "to_number",
        "from_number",
        "call_direction",
        "call_status",
    ):
        assert name in cdr
    assert cdr["call_status"] == "completed" and cdr["call_duration"] == 10 and cdr["to_number"] == done_to[1:]

    queued_request = create(queued_to)
    queued = rest.get(f"Call/{queued_request}/", params={"status": "queued"})
    assert queued.status_code == 200 and queued.json()["call_status"] == "queued"
    assert rest.get(f"Call/{queued_request}/", params={"status": "live"}).status_code == 404


def test_list_finds_a_finished_call_by_destination_and_end_time(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, None, answer_after=0, talk_for=1, cdr_delay=0)
    before = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    rest.post("Call/", json=call_body(receiver, to="+15550100009"))
    until(lambda: sim_call(plivo, request_uuid)["cdr_ready"])
    listing = rest.get("Call/", params={"to_number": DEST, "end_time__gte": before}).json()
    assert listing["meta"]["count"] == 1
    assert listing["objects"][0]["call_uuid"] == sim_call(plivo, request_uuid)["call_uuid"]
    later = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M")
    assert rest.get("Call/", params={"to_number": DEST, "end_time__gte": later}).json()["objects"] == []


def test_cancel_a_queued_request_sends_a_cancel_hangup(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, DEST, queue_for=HOLD)
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    assert rest.delete(f"Request/{request_uuid}/").status_code == 204
    assert rest.delete(f"Request/{request_uuid}/").status_code == 404
    hangup = until(lambda: receiver.on("/hangup"))[0].params
    assert hangup["CallStatus"] == "cancel" and hangup["HangupSource"] == "API Request"
    assert hangup["RequestUUID"] == request_uuid and not receiver.on("/ring")


def test_hang_up_a_live_call(plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]) -> None:
    script(plivo, DEST, answer_after=0, talk_for=1000)
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    call_uuid = until(
        lambda: sim_call(plivo, request_uuid)["status"] == "in-progress" and sim_call(plivo, request_uuid)["call_uuid"]
    )
    assert rest.delete(f"Call/{call_uuid}/").status_code == 204
    hangup = until(lambda: receiver.on("/hangup"))[0].params
    assert hangup["CallStatus"] == "completed" and hangup["HangupSource"] == "API Request"
    assert rest.delete(f"Call/{call_uuid}/").status_code == 404


def test_recording_listed_after_hangup(
    plivo: str, rest: httpx.Client, receiver: Receiver, until: Callable[..., Any]
) -> None:
    script(plivo, DEST, answer_after=0, talk_for=1, recording=True, cdr_delay=0)
    request_uuid = rest.post("Call/", json=call_body(receiver)).json()["request_uuid"]
    call_uuid = until(lambda: sim_call(plivo, request_uuid)["cdr_ready"] and sim_call(plivo, request_uuid)["call_uuid"])
    objects = rest.get("Recording/", params={"call_uuid": call_uuid}).json()["objects"]
    assert len(objects) == 1 and objects[0]["call_uuid"] == call_uuid
    assert httpx.get(objects[0]["recording_url"]).status_code == 200


def test_calls_are_dialled_at_the_cps_rate(
    plivo_factory: Callable[..., str], receiver: Receiver, until: Callable[..., Any]
) -> None:
    plivo = plivo_factory(cps=2, time_scale=0.2)  # one dial every 0.1 s of wall time
    with httpx.Client(base_url=f"{plivo}/v1/Account/{AUTH_ID}/", auth=(AUTH_ID, AUTH_TOKEN)) as rest:
        uuids = [
            rest.post("Call/", json=call_body(receiver, to=f"+1555010010{i}")).json()["request_uuid"] for i in range(3)
        ]
        calls = until(
            lambda: all(sim_call(plivo, u)["call_uuid"] for u in uuids) and [sim_call(plivo, u) for u in uuids]
        )
    dialled = [next(t["at"] for t in c["timeline"] if t["state"] == "initiated") for c in calls]
    assert dialled[1] - dialled[0] >= 0.09 and dialled[2] - dialled[1] >= 0.09
