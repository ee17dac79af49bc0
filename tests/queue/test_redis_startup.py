"""What the service does with the Redis it is given: refuse one that can evict its keys, wait for one that is not
there yet, speak TLS with the instance's own CA, and keep its liveness probe free of Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from callqueue.api.app import create_app
from callqueue.settings import SettingsError, load_settings
from local.redis_server import ThrowawayRedis, free_port
from local.simulators.server import running
from tests.tls_proxy import CA_PEM, OTHER_CA_PEM, tls_proxy

DEADLINE_S = 60.0
CALL = {"phone_number": "+14155550100", "campaign_id": "c", "call_config": {"flow_name": "renewal"}}
REFUSED_VOLATILE = "refused for its eviction policy (maxmemory-policy volatile-lru)"
REFUSED_ALLKEYS = "refused for its eviction policy (maxmemory-policy allkeys-lru)"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {DEADLINE_S} s: {what}")


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m callqueue` with `env`, expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "callqueue"],
        env={**os.environ, "PORT": str(free_port()), "LOG_FORMAT": "text", **env},
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
def test_service_refuses_to_start_against_an_evicting_redis(policy: str) -> None:
    with ThrowawayRedis(maxmemory_policy=policy) as evicting:
        result = _serve({"REDIS_URL": evicting.url, "DISPATCH_WORKERS": "1"})
        keys = redis.Redis.from_url(evicting.url).dbsize()
    output = result.stdout + result.stderr  # log lines go to stdout, as Cloud Run collects them
    assert result.returncode != 0
    assert f"maxmemory-policy {policy}" in output
    assert "The service does not run against it. Fix: set maxmemory-policy to noeviction" in output
    assert keys == 0, "nothing was written to the refused Redis"


def test_allow_eviction_lets_a_local_redis_through(key_prefix: str) -> None:
    with ThrowawayRedis(maxmemory_policy="allkeys-lru") as evicting:
        env = {"REDIS_URL": evicting.url, "REDIS_KEY_PREFIX": key_prefix, "REDIS_ALLOW_EVICTION": "true"}
        with running(create_app(load_settings(env), background=False)) as base:
            health = httpx.get(f"{base}/api/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["redis"]["maxmemory_policy"] == "allkeys-lru"


def test_redis_absent_at_start_then_checked_when_it_answers(key_prefix: str) -> None:
    """Started while Redis is down: alive at once, healthy only once Redis answers with noeviction, and the
    dispatch workers start then; an evicting Redis that appears later is refused and gets no writes."""
    port = free_port()
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "1"}
    with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/api/live").json() == {"status": "alive"}
        down = client.get("/api/health")
        assert down.status_code == 503 and down.json()["failing"] == ["redis"]
        with ThrowawayRedis(port=port, maxmemory_policy="volatile-lru"):
            wait_for(lambda: client.get("/api/health").json().get("failing") == ["redis-policy"], "refused")
            refused = client.get("/api/health").json()["redis"]
            assert refused["status"] == "refused" and "volatile-lru" in refused["error"]
            answer = client.post("/api/calls/queue", json=CALL)
            assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0, answer.text
            assert answer.json()["errors"] == [{"dependency": "redis", "reason": REFUSED_VOLATILE}]
            assert "Fix: set maxmemory-policy to noeviction" in answer.json()["message"]
            assert redis.Redis(port=port).dbsize() == 0, "no background work or request against a refused Redis"
            assert client.get("/api/live").status_code == 200
            redis.Redis(port=port).config_set("maxmemory-policy", "noeviction")  # fixed: taken without a restart
            wait_for(lambda: client.get("/api/health").status_code == 200, "healthy once the policy is fixed")
            wait_for(lambda: client.get("/api/queue/status").json()["live_workers"] >= 1, "dispatch workers started")
            assert client.post("/api/calls/queue", json=CALL).status_code == 202

    port = free_port()
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    with running(create_app(load_settings(env))) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/api/health").status_code == 503
        with ThrowawayRedis(port=port):
            wait_for(lambda: client.get("/api/health").status_code == 200, "healthy once Redis answers")
            wait_for(lambda: client.get("/api/queue/status").json()["live_workers"] >= 1, "dispatch workers started")


def test_webhooks_role_names_a_refused_policy_but_no_host(key_prefix: str) -> None:
    """The public role's health says why Redis is refused (the policy) and nothing of where it is; callbacks
    answer 503 with the same reason, so Plivo retries them."""
    port = free_port()
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_KEY_PREFIX": key_prefix, "SERVICE_ROLE": "webhooks",
           "PLIVO_AUTH_ID": "MAREFUSED", "PLIVO_AUTH_TOKEN": "tok"}  # fmt: skip
    with (
        running(create_app(load_settings(env))) as base,
        httpx.Client(base_url=base, timeout=10) as client,
        ThrowawayRedis(port=port, maxmemory_policy="allkeys-lru"),
    ):  # the app starts first, while nothing answers on the port
        wait_for(lambda: client.get("/api/health").json().get("failing") == ["redis-policy"], "refused")
        answer = client.get("/api/health")
        assert answer.status_code == 503
        assert set(answer.json()["redis"]) == {"status", "latency_ms", "error"}, answer.text
        assert answer.json()["redis"]["status"] == "refused" and answer.json()["redis"]["error"] == REFUSED_ALLKEYS
        assert "127.0.0.1" not in answer.text and str(port) not in answer.text
        callback = client.post(f"/api/webhooks/plivo/hangup?call_id={'a' * 32}", data={"CallUUID": "c"})
        assert callback.status_code == 503, callback.text
        assert callback.json()["errors"] == [{"dependency": "redis", "reason": REFUSED_ALLKEYS}]
        assert redis.Redis(port=port).dbsize() == 0


def test_liveness_touches_no_dependency() -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DISPATCH_WORKERS": "0"}
    for role in ("all", "webhooks"):
        with running(create_app(load_settings(env | {"SERVICE_ROLE": role}), background=False)) as base:
            assert httpx.get(f"{base}/api/live", timeout=10).json() == {"status": "alive"}, role
            assert httpx.get(f"{base}/api/health", timeout=10).status_code == 503, role


def test_rediss_with_the_instance_ca(redis_url: str, key_prefix: str) -> None:
    """A TLS Redis whose certificate a private CA signed: reached with REDIS_CA_CERT, refused without it."""
    plain_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with tls_proxy(plain_port) as tls_port:
        env = {"REDIS_URL": f"rediss://127.0.0.1:{tls_port}/0", "REDIS_KEY_PREFIX": key_prefix}
        with running(create_app(load_settings(env | {"REDIS_CA_CERT": CA_PEM}), background=False)) as base:
            health = httpx.get(f"{base}/api/health", timeout=10)
            assert health.status_code == 200, health.text
            queued = httpx.post(f"{base}/api/calls/queue", json=CALL, timeout=10)
            assert queued.status_code in (200, 201, 202), queued.text
            call_id = queued.json()["call_id"]
        assert redis.Redis.from_url(redis_url).exists(f"{key_prefix}:call:{call_id}") == 1, "written through TLS"
        for wrong in ({"REDIS_CA_CERT": OTHER_CA_PEM}, {}):
            with running(create_app(load_settings(env | wrong), background=False)) as base:
                health = httpx.get(f"{base}/api/health", timeout=10)
                assert health.status_code == 503 and health.json()["failing"] == ["redis"]
                assert "CERTIFICATE_VERIFY_FAILED" in health.json()["redis"]["error"]


def test_ca_cert_needs_tls_and_pem() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL does not use TLS"):
        load_settings({"REDIS_URL": "redis://10.0.0.3:6379/0", "REDIS_CA_CERT": CA_PEM})
    with pytest.raises(SettingsError, match="not a PEM certificate"):
        load_settings({"REDIS_URL": "rediss://10.0.0.3:6378/0", "REDIS_CA_CERT": "hello"})
