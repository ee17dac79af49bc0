"""Every callback's V3 signature is checked over the public URL; replays, malformed and unknown calls refused."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.simulators.server import running
from local.simulators.signing import signature_headers

TOKEN = "sig-token"
PUBLIC = "https://queue-1234.us-east1.run.app"  # what Plivo calls; the app itself listens elsewhere


@pytest.fixture
def api(redis_url: str, key_prefix: str) -> Iterator[httpx.Client]:
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "PLIVO_AUTH_ID": "MASIG",
        "PLIVO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC,
        "AUTH_MODE": "none",
    }
    with running(create_app(load_settings(env), background=False)) as base, httpx.Client(base_url=base) as client:
        yield client


def _queue(api: httpx.Client) -> str:
    body = {"phone_number": "+14155550100", "campaign_id": "sig", "call_config": {"flow_name": "x"}}
    return str(api.post("/api/calls/queue", json=body).json()["call_id"])


def _post(api: httpx.Client, event: str, query: dict[str, str], params: dict[str, str], **sign: str) -> httpx.Response:
    path = f"/api/webhooks/plivo/{event}?{urlencode(query)}"
    headers = signature_headers(sign.get("token", TOKEN), "POST", sign.get("base", PUBLIC) + path, params)
    headers.update(sign.get("headers", {}))  # type: ignore[arg-type]
    return api.post(path, data=params, headers=headers)


RING = {"CallUUID": "c-1", "RequestUUID": "r-1", "CallStatus": "ringing", "To": "14155550100"}


def test_signature_nonce_malformed_and_unknown_call(api: httpx.Client) -> None:
    call_id = _queue(api)
    query = {"call_id": call_id}
    unsigned = api.post(f"/api/webhooks/plivo/ring?call_id={call_id}", data=RING)
    assert unsigned.status_code == 403 and unsigned.json()["error"] == "signature_missing"
    assert _post(api, "ring", query, RING, token="not-the-token").status_code == 403
    # Signed for the URL the app sees, not the public one Plivo called: refused.
    assert _post(api, "ring", query, RING, base=str(api.base_url).rstrip("/")).status_code == 403
    tampered = _post(api, "ring", query, RING, headers={"X-Plivo-Signature-V3": "AAAA"})  # type: ignore[arg-type]
    assert tampered.status_code == 403
    assert api.get(f"/api/calls/{call_id}").json()["status"] == "queued"

    path = f"/api/webhooks/plivo/ring?call_id={call_id}"
    headers = signature_headers(TOKEN, "POST", PUBLIC + path, RING)
    ok = api.post(path, data=RING, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"call_id": call_id, "status": "ringing", "changed": True}
    replay = api.post(path, data=RING, headers=headers)
    assert replay.status_code == 403 and replay.json()["error"] == "replayed"

    assert _post(api, "hangup", query, {**RING, "CallStatus": "exploded"}).status_code == 400
    assert _post(api, "hangup", query, {**RING, "CallStatus": "completed", "Duration": "x"}).status_code == 400
    assert _post(api, "hangup", {}, {**RING, "CallStatus": "completed"}).status_code == 400
    missing = _post(api, "hangup", {"call_id": "no-such-call"}, {**RING, "CallStatus": "completed"})
    assert missing.status_code == 404
    record = api.get(f"/api/calls/{call_id}").json()
    assert record["status"] == "ringing" and [h["status"] for h in record["history"]] == ["queued", "ringing"]
    assert record["call_uuid"] == "c-1"

    done = _post(api, "hangup", query, {**RING, "CallStatus": "completed", "Duration": "7", "HangupCauseName": "N"})
    assert done.status_code == 200
    record = api.get(f"/api/calls/{call_id}").json()
    assert record["status"] == "completed" and record["duration"] == 7 and record["hangup_cause"] == "N"


def test_get_callbacks_are_verified_too(api: httpx.Client) -> None:
    call_id = _queue(api)
    params = {**RING, "call_id": call_id}
    path = f"/api/webhooks/plivo/ring?{urlencode(params)}"
    headers = signature_headers(TOKEN, "GET", PUBLIC + path, {})
    assert api.get(path, headers=headers).status_code == 200
    assert api.get(f"/api/calls/{call_id}").json()["status"] == "ringing"
    bad = signature_headers("other", "GET", PUBLIC + path, {})
    assert api.get(path, headers=bad).status_code == 403
