"""Forged, replayed and spliced callbacks: refused without a write to the call, at a bounded cost in Redis and logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode

import httpx
import pytest
import redis
from fastapi import FastAPI
from redis.asyncio import Redis as AsyncRedis

from callqueue.api.app import create_app
from callqueue.metrics.callbacks import RefusedCallbacks
from callqueue.runtime import Runtime
from callqueue.settings import load_settings
from callqueue.store.keys import Keys
from callqueue.tracking.rejections import SAMPLES_PER_WINDOW
from local.redis_server import ThrowawayRedis, free_port
from local.simulators.server import running
from local.simulators.signing import sign_v3, signature_headers
from tests.tracking.conftest import wait_for

TOKEN = "abuse-token"
PUBLIC = "https://queue-1234.us-east1.run.app"
CALL = {"phone_number": "+14155550100", "campaign_id": "abuse", "call_config": {"flow_name": "x"}}


@dataclass
class Service:
    http: httpx.Client
    app: FastAPI

    @property
    def runtime(self) -> Runtime:
        return cast(Runtime, self.app.state.runtime)

    def queue(self) -> str:
        return str(self.http.post("/api/calls/queue", json=CALL).json()["call_id"])


@pytest.fixture
def service(redis_url: str, key_prefix: str) -> Iterator[Service]:
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "PLIVO_AUTH_ID": "MAABUSE",
           "PLIVO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC, "DISPATCH_WORKERS": "0"}  # fmt: skip
    app = create_app(load_settings(env), background=False)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield Service(client, app)


def _path(event: str, call_id: str) -> str:
    return f"/api/webhooks/plivo/{event}?{urlencode({'call_id': call_id})}"


def _signed(signature: str, nonce: str) -> dict[str, str]:
    return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce}


def _call_keys(r: redis.Redis, prefix: str, call_id: str) -> dict[str, object]:
    return {
        "hash": r.hgetall(f"{prefix}:call:{call_id}"),
        "history": r.lrange(f"{prefix}:call:{call_id}:history", 0, -1),
        "callbacks": r.smembers(f"{prefix}:call:{call_id}:callbacks"),
    }


def test_forged_callbacks_write_nothing_on_the_call_and_cost_bounded_writes_and_lines(
    service: Service, sync_redis: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = service.queue()
    before = _call_keys(sync_redis, key_prefix, call_id)
    params = {"CallUUID": "c-1", "CallStatus": "completed", "Duration": "9"}
    forged = 2000
    caplog.set_level(logging.INFO, logger="callqueue")
    caplog.clear()
    for n in range(forged):
        headers = {"X-Plivo-Signature-V3": "Zm9yZ2Vk", "X-Plivo-Signature-V3-Nonce": f"n{n}"} if n % 2 else {}
        answer = service.http.post(_path("hangup", call_id), data=params, headers=headers)
        assert answer.status_code == 403
    assert _call_keys(sync_redis, key_prefix, call_id) == before, "a refused callback must not touch the call"
    assert sync_redis.hget(f"{key_prefix}:call:{call_id}", "trk_last_rejected") is None
    samples = cast(int, sync_redis.llen(f"{key_prefix}:rejected-events"))
    lines = [r for r in caplog.records if r.name.startswith("callqueue")]
    assert samples <= SAMPLES_PER_WINDOW and len(lines) <= SAMPLES_PER_WINDOW, (samples, len(lines))
    counts = service.runtime.rejections.counts
    assert counts[("webhook", "signature_missing")] == forged // 2
    assert counts[("webhook", "signature_invalid")] == forged // 2
    assert service.http.get(f"/api/calls/{call_id}").json()["status"] == "queued"


def test_replays_are_recognised_by_what_was_signed_not_by_the_nonce_header(
    service: Service, sync_redis: redis.Redis, key_prefix: str
) -> None:
    call_id = service.queue()
    path = _path("ring", call_id)
    # The signed string ends with the sorted parameters, '.', and the nonce: a value with a dot can be cut there
    # and its tail moved into the nonce header, and the signature still matches.
    params = {"CallUUID": "c-1", "CallStatus": "ringing", "To": "sip:agent.example"}
    nonce = "n0nce"
    signature = sign_v3(TOKEN, "POST", PUBLIC + path, params, nonce)
    genuine = service.http.post(path, data=params, headers=_signed(signature, nonce))
    assert genuine.status_code == 200 and genuine.json()["changed"] is True
    spliced_params, spliced_nonce = {**params, "To": "sip:agent"}, f"example.{nonce}"
    assert sign_v3(TOKEN, "POST", PUBLIC + path, spliced_params, spliced_nonce) == signature
    spliced = service.http.post(path, data=spliced_params, headers=_signed(signature, spliced_nonce))
    assert spliced.status_code == 403 and spliced.json()["error"] == "replayed", spliced.text
    # Several signatures may be sent (key rotation): extra ones do not make the same signed request new.
    padded = service.http.post(path, data=params, headers=_signed(f"{signature},AAAA", nonce))
    assert padded.status_code == 403 and padded.json()["error"] == "replayed"
    history = [h["status"] for h in service.http.get(f"/api/calls/{call_id}").json()["history"]]
    assert history == ["queued", "ringing"]


def test_an_exact_replay_is_refused_for_the_whole_life_of_the_call_then_finds_no_call(
    service: Service, sync_redis: redis.Redis, key_prefix: str
) -> None:
    call_id = service.queue()
    path = _path("hangup", call_id)
    params = {"CallUUID": "c-9", "CallStatus": "completed", "Duration": "5"}
    headers = signature_headers(TOKEN, "POST", PUBLIC + path, params)
    assert service.http.post(path, data=params, headers=headers).status_code == 200
    call_key, seen_key = f"{key_prefix}:call:{call_id}", f"{key_prefix}:call:{call_id}:callbacks"
    # Remembered exactly as long as the call is kept (no separate, shorter nonce lifetime).
    call_ttl, seen_ttl = cast(int, sync_redis.pttl(call_key)), cast(int, sync_redis.pttl(seen_key))
    assert call_ttl > 0 and abs(call_ttl - seen_ttl) < 60_000, (call_ttl, seen_ttl)
    replay = service.http.post(path, data=params, headers=headers)
    assert replay.status_code == 403 and replay.json()["error"] == "replayed"
    # The retention has run out: every key of the call is gone, and the replay finds nothing to change.
    for key in sync_redis.scan_iter(f"{key_prefix}:*"):
        if call_id in str(key) or str(key).endswith(":cuid:c-9"):
            sync_redis.delete(key)
    late = service.http.post(path, data=params, headers=headers)
    assert late.status_code == 404 and late.json()["error"] == "unknown_call"
    assert [k for k in sync_redis.scan_iter(f"{key_prefix}:*") if call_id in str(k)] == []


def test_a_callback_that_got_a_5xx_is_applied_when_plivo_retries_it(
    service: Service, sync_redis: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from callqueue.tracking import webhooks

    call_id = service.queue()
    path = _path("ring", call_id)
    params = {"CallUUID": "c-2", "CallStatus": "ringing"}
    headers = signature_headers(TOKEN, "POST", PUBLIC + path, params)

    async def redis_drops_out(*args: object, **kwargs: object) -> object:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(webhooks, "apply_pushed_event", redis_drops_out)
    first = service.http.post(path, data=params, headers=headers)
    assert first.status_code == 503 and first.headers["Retry-After"]
    monkeypatch.undo()
    retry = service.http.post(path, data=params, headers=headers)  # Plivo re-sends the same signed request
    assert retry.status_code == 200 and retry.json()["changed"] is True, retry.text
    assert service.http.post(path, data=params, headers=headers).status_code == 403


def test_a_callback_whose_answer_failed_after_its_status_was_written_is_applied_once_when_retried(
    service: Service, sync_redis: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis dropped out between writing the new status and spending the nonce: Plivo's retry is answered 200
    (the event is known, not a replay to refuse), it changes nothing more, and only then is the nonce spent."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from callqueue.store.calls import CallStore

    call_id = service.queue()
    path = _path("ring", call_id)
    params = {"CallUUID": "c-3", "CallStatus": "ringing"}
    headers = signature_headers(TOKEN, "POST", PUBLIC + path, params)

    async def redis_drops_out(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(CallStore, "spend_callback", redis_drops_out)
    first = service.http.post(path, data=params, headers=headers)
    assert first.status_code == 503
    assert sync_redis.hget(f"{key_prefix}:call:{call_id}", "status") == "ringing"  # the status was written
    monkeypatch.undo()
    retry = service.http.post(path, data=params, headers=headers)
    assert retry.status_code == 200 and retry.json()["changed"] is False, retry.text
    entries = cast(list[str], sync_redis.lrange(f"{key_prefix}:call:{call_id}:history", 0, -1))
    history = [h for h in entries if '"ringing"' in h]
    assert len(history) == 1  # applied once
    assert service.http.post(path, data=params, headers=headers).status_code == 403  # now spent


def _hincrby_calls(r: redis.Redis) -> int:
    stats = cast(dict[str, dict[str, int]], r.info("commandstats"))
    return int(stats.get("cmdstat_hincrby", {}).get("calls", 0))


def test_refused_callbacks_are_counted_in_the_process_and_reach_redis_coalesced() -> None:
    """A flood of forged callbacks costs one tally write per FLUSH_EVERY_S, not one each, and none is left uncounted:
    the metric (`{prefix}:metrics:callbacks`) has them all once the process has flushed (here: at shutdown)."""
    forged = 400
    with ThrowawayRedis() as own:  # server-wide command statistics: a Redis of this test's own
        r = redis.Redis.from_url(own.url, decode_responses=True)
        env = {"REDIS_URL": own.url, "PLIVO_AUTH_ID": "MAABUSE", "PLIVO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
               "DISPATCH_WORKERS": "0"}  # fmt: skip
        app = create_app(load_settings(env), background=False)
        with running(app) as base, httpx.Client(base_url=base, timeout=10) as http:
            call_id = str(http.post("/api/calls/queue", json=CALL).json()["call_id"])
            refused = cast(Runtime, app.state.runtime).refused_callbacks
            refused.every_s = 3600.0  # after the first write, the rest wait for the next flush: here, shutdown
            before = _hincrby_calls(r)
            for n in range(forged):
                headers = {"X-Plivo-Signature-V3": "Zm9yZ2Vk", "X-Plivo-Signature-V3-Nonce": f"n{n}"} if n % 2 else {}
                assert (
                    http.post(_path("hangup", call_id), data={"CallStatus": "completed"}, headers=headers).status_code
                    == 403
                )

            def in_redis() -> int:
                return sum(int(v) for v in cast(dict[str, str], r.hgetall("cq:metrics:callbacks")).values())

            # Every refusal is counted: in Redis already (the first one, written at once) or pending in the process.
            wait_for(lambda: in_redis() + sum(refused.pending.values()) == forged, what="every refusal counted")
            assert _hincrby_calls(r) - before <= 2, "one write (a field per kind) for the whole flood"
            assert in_redis() < forged
        totals = cast(dict[str, str], r.hgetall("cq:metrics:callbacks"))
        assert totals == {"hangup|signature_missing": str(forged // 2), "hangup|signature_invalid": str(forged // 2)}
        r.close()


def test_refusal_counts_survive_a_redis_outage_in_the_process() -> None:
    async def scenario() -> dict[str, str]:
        refused = RefusedCallbacks(every_s=0.0)
        with ThrowawayRedis() as own:
            keys = Keys("cq")
            down = AsyncRedis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
            refused.add(down, keys, "ring", "signature_invalid")
            refused.add(down, keys, "ring", "signature_invalid")
            await refused.close(down, keys)  # the write fails: the counts stay pending, nothing is lost
            assert refused.pending == {("ring", "signature_invalid"): 2}
            up = AsyncRedis.from_url(own.url, decode_responses=True)
            refused.add(up, keys, "ring", "malformed")
            await refused.close(up, keys)
            assert not refused.pending
            written = cast(dict[str, str], await up.hgetall(keys.metrics_callbacks))
            await up.aclose()
            await down.aclose()
            return written

    assert asyncio.run(scenario()) == {"ring|signature_invalid": "2", "ring|malformed": "1"}
