"""SERVICE_ROLE=webhooks: the public face on Cloud Run serves Plivo's callbacks and health, and nothing else."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from local.simulators.server import running
from local.simulators.signing import signature_headers

PUBLIC = "https://callqueue-webhooks-111.us-east1.run.app"
CALL = {"phone_number": "+14155550100", "campaign_id": "c1", "call_config": {"flow_name": "f"}}


def test_webhooks_role_serves_signed_callbacks_but_not_the_api(redis_url: str, key_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "PLIVO_AUTH_ID": "MA1",
           "PLIVO_AUTH_TOKEN": "tok", "PUBLIC_BASE_URL": PUBLIC, "DISPATCH_WORKERS": "0"}  # fmt: skip
    queue_app = create_app(load_settings(env), background=False)
    webhooks_app = create_app(load_settings({**env, "SERVICE_ROLE": "webhooks"}))
    with running(queue_app) as queue_base, running(webhooks_app) as hooks_base:
        queue, hooks = httpx.Client(base_url=queue_base), httpx.Client(base_url=hooks_base)
        call_id = queue.post("/api/calls/queue", json=CALL).json()["call_id"]

        assert hooks.post("/api/calls/queue", json=CALL).status_code == 404
        assert hooks.get(f"/api/calls/{call_id}").status_code == 404
        assert hooks.get("/api/queue/status").status_code == 404
        health = hooks.get("/api/health").json()
        assert health["role"] == "webhooks" and health["status"] == "ok"

        path = f"/api/webhooks/plivo/ring?{urlencode({'call_id': call_id})}"
        params = {"CallUUID": "c-1", "RequestUUID": "r-1", "CallStatus": "ringing", "To": "14155550100"}
        signed = signature_headers("tok", "POST", PUBLIC + path, params)
        assert hooks.post(path, data=params, headers=signed).status_code == 200
        record = queue.get(f"/api/calls/{call_id}").json()
        assert record["status"] == "ringing" and record["call_uuid"] == "c-1"
        assert hooks.get("/api/health").json()["draining"] is False
        status = queue.get("/api/queue/status").json()
        assert status["live_instances"] == 0 and status["live_workers"] == 0, (
            "the webhooks role runs no background work"
        )
