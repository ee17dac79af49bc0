"""`diagnose` against the simulators and a real Redis, healthy and broken one way at a time.

Each test asserts the verdict, the remedy an operator reads, and the exit code (1 on any fail, 0 on warnings).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from callqueue.ops.checks.profile import WRONG_PROFILE_FIX
from callqueue.ops.checks.queue_service import wrong_profile
from callqueue.ops.checks.region import COLOCATE_FIX
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from local.redis_server import ThrowawayRedis
from tests.ops.conftest import HUNG_FOR_S, PATIENT

Run = Callable[..., tuple[int, dict[str, Any]]]
SEED_AGENT = "https://pipecat-agent-staging-443142017693.us-east1.run.app"
SEED_BACKEND = "https://backend-staging-443142017693.asia-southeast1.run.app"


def verdicts(checks: dict[str, Any]) -> dict[str, str]:
    return {name: c["verdict"] for name, c in checks.items()}


def test_healthy_environment_passes_every_check(diagnose: Run, env: dict[str, str]) -> None:
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert code == 0
    assert verdicts(checks) == {
        name: "ok"
        for name in (
            "settings",
            "profile",
            "redis",
            "redis-eviction",
            "agent",
            "agent-kind",
            "backend",
            "region",
            "plivo",
            "queue-backlog",
            "stuck-calls",
            "results-outbox",
        )
    }
    assert checks["profile"]["details"]["values"]["INITIAL_STATUS_DELAY"] == "5 (profile:local)"


def test_agent_kind_says_what_a_stock_agent_means_for_retries_and_callbacks(
    diagnose: Run, env: dict[str, str], peers: dict[str, str]
) -> None:
    code, checks = diagnose(env, "--timeout", "3", "--skip", "region")
    kind = checks["agent-kind"]
    assert (kind["verdict"], kind["details"]["kind"]) == ("ok", "status_contract")
    code, checks = diagnose(env | {"AGENT_SERVER_URL": peers["agent_stock"]}, "--timeout", "3", "--skip", "region")
    kind = checks["agent-kind"]
    assert (code, kind["verdict"], kind["details"]["kind"]) == (0, "warn", "stock")
    assert "Plivo callbacks are not configured" in kind["summary"]
    assert "proves nothing" in kind["details"]["retries"] and "DIAL_PROOF_SETTLE" in kind["details"]["retries"]
    assert "ring_url" in kind["remedy"] and "hangup_url" in kind["remedy"]
    assert '404 {"detail":"Not Found"}' in kind["details"]["evidence"]
    assert not httpx.get(f"{peers['agent_stock']}/_sim/starts").json()["starts"], "the probe dials nobody"


def test_seed_regions_fail_whether_or_not_the_urls_answer(diagnose: Run, env: dict[str, str]) -> None:
    env |= {"AGENT_SERVER_URL": SEED_AGENT, "BACKEND_URL": SEED_BACKEND}
    code, checks = diagnose(env, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind,backend")
    assert code == 1
    region = checks["region"]
    assert region["verdict"] == "fail"
    assert (
        region["remedy"]
        == COLOCATE_FIX
        == "deploy all four services (queue, webhooks, agent, backend) in one region (see infra)"
    )
    assert "agent in us-east1" in region["summary"] and "backend in asia-southeast1" in region["summary"]
    assert "agent" not in checks  # skipped: the region verdict stands on the URL strings alone


def test_same_region_and_legacy_urls(diagnose: Run, env: dict[str, str]) -> None:
    same = {
        "AGENT_SERVER_URL": "https://agent-123.us-east1.run.app",
        "BACKEND_URL": "https://backend-123.us-east1.run.app",
    }
    code, checks = diagnose(env | same, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind,backend")
    assert (code, checks["region"]["verdict"]) == (0, "ok")
    assert "us-east1" in checks["region"]["summary"]
    legacy = same | {"BACKEND_URL": "https://backend-abc123xyz-ue.a.run.app"}
    code, checks = diagnose(env | legacy, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind,backend")
    assert (code, checks["region"]["verdict"]) == (0, "warn")
    assert "region unknown for backend" in checks["region"]["summary"]
    assert COLOCATE_FIX in checks["region"]["remedy"]


def _on_cloud_run(env: dict[str, str], peers: dict[str, str]) -> dict[str, str]:
    return env | {"K_SERVICE": "callqueue-queue", "GCE_METADATA_HOST": peers["metadata"], "AUTH_MODE": "auto"}


def test_queue_region_comes_from_the_metadata_server(diagnose: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    env = _on_cloud_run(env, peers) | {
        "AGENT_SERVER_URL": "https://agent-123.europe-west1.run.app",
        "BACKEND_URL": "https://backend-123.europe-west1.run.app",
    }
    code, checks = diagnose(env, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind,backend")
    assert checks["region"]["verdict"] == "ok", checks["region"]
    assert checks["region"]["details"]["queue"] == "europe-west1 (from the metadata server)"
    env["AGENT_SERVER_URL"] = "https://agent-123.us-east1.run.app"
    code, checks = diagnose(env, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind,backend")
    assert (code, checks["region"]["verdict"]) == (1, "fail")
    assert "queue in europe-west1" in checks["region"]["summary"]


def test_metadata_server_unreachable_leaves_the_queue_region_unknown(
    diagnose: Run, env: dict[str, str], closed_port_url: str
) -> None:
    env |= {"K_SERVICE": "q", "AUTH_MODE": "none", "AGENT_SERVER_URL": "https://agent-123.us-east1.run.app"}
    dead = closed_port_url.replace("redis://", "http://").removesuffix("/0")
    code, checks = diagnose(env, "--timeout", PATIENT, "--skip", "agent,agent-auth,agent-kind", "--metadata-url", dead)
    assert (code, checks["region"]["verdict"]) == (0, "warn")
    assert checks["region"]["details"]["queue"].startswith("unknown: metadata server lookup failed")


def test_deployed_agent_must_refuse_an_anonymous_start(
    diagnose: Run, env: dict[str, str], peers: dict[str, str]
) -> None:
    """The stock agent validates the body of an anonymous /start (400): that fails. Nothing is dialled either way."""
    deployed = _on_cloud_run(env, peers) | {"AGENT_SERVER_URL": peers["agent"]}
    code, checks = diagnose(deployed, "--timeout", PATIENT, "--skip", "region")
    auth = checks["agent-auth"]
    assert (code, auth["verdict"], auth["details"]["status"]) == (1, "fail", 400)
    assert "validated the body of an anonymous /start" in auth["summary"]
    assert "verify the caller's Google ID token on /start" in auth["remedy"]
    assert checks["agent"]["verdict"] == "ok", "reachable and healthy: only the identity check fails"
    code, checks = diagnose(deployed | {"AGENT_SERVER_URL": peers["agent_checking_tokens"]}, "--timeout", PATIENT)
    assert (checks["agent-auth"]["verdict"], checks["agent-auth"]["details"]["status"]) == ("ok", 401)
    for agent in ("agent", "agent_checking_tokens"):
        assert not [s for s in httpx.get(f"{peers[agent]}/_sim/starts").json()["starts"] if s["dialled"]]
    _, local = diagnose(env, "--timeout", PATIENT)
    assert "agent-auth" not in local, "a local agent with AUTH_MODE=none is the stock example: not checked"


def test_403_is_explained_as_the_missing_invoker_grant(
    diagnose: Run, env: dict[str, str], peers: dict[str, str]
) -> None:
    code, checks = diagnose(_on_cloud_run(env, peers) | {"AGENT_SERVER_URL": peers["forbidden"]}, "--timeout", PATIENT)
    assert code == 1
    agent = checks["agent"]
    assert agent["verdict"] == "fail"
    assert "answered 403" in agent["summary"]
    assert "roles/run.invoker" in agent["remedy"] and "add-iam-policy-binding" in agent["remedy"]
    assert agent["details"]["auth"] == "Google ID token from the metadata server"


def test_401_is_explained_as_a_missing_token(diagnose: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    code, checks = diagnose(env | {"BACKEND_URL": peers["unauthorized"]}, "--timeout", PATIENT)
    assert code == 1
    assert "requires a Google ID token and none was sent" in checks["backend"]["summary"]
    assert "AUTH_MODE=auto" in checks["backend"]["remedy"]


def test_hung_peer_ends_within_the_timeout(diagnose: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    started = time.monotonic()
    code, checks = diagnose(env | {"AGENT_SERVER_URL": peers["hung"]}, "--timeout", "3")
    assert time.monotonic() - started < HUNG_FOR_S / 2, "diagnose waited for the hung peer"
    assert code == 1
    assert checks["agent"]["verdict"] == "fail"
    assert "no answer" in checks["agent"]["summary"] and "within 3 s" in checks["agent"]["summary"]
    assert checks["backend"]["verdict"] == "ok"


def test_non_json_health_is_a_warning(diagnose: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    code, checks = diagnose(env | {"AGENT_SERVER_URL": peers["not_json"]}, "--timeout", PATIENT)
    assert (code, checks["agent"]["verdict"]) == (0, "warn")
    assert "not JSON" in checks["agent"]["summary"]


def test_redis_down(diagnose: Run, env: dict[str, str], closed_port_url: str) -> None:
    code, checks = diagnose(env | {"REDIS_URL": closed_port_url}, "--timeout", PATIENT)
    assert code == 1
    assert checks["redis"]["verdict"] == "fail"
    assert "unreachable" in checks["redis"]["summary"]
    assert "check REDIS_URL" in checks["redis"]["remedy"]
    assert checks["queue"]["verdict"] == "fail"
    assert checks["agent"]["verdict"] == "ok"


def test_eviction_policy(diagnose: Run, env: dict[str, str]) -> None:
    with ThrowawayRedis() as redis:

        async def set_policy(policy: str) -> None:
            async with Redis.from_url(redis.url) as client:
                await client.config_set("maxmemory-policy", policy)

        asyncio.run(set_policy("allkeys-lru"))
        code, checks = diagnose(env | {"REDIS_URL": redis.url}, "--timeout", PATIENT)
        assert (code, checks["redis-eviction"]["verdict"]) == (1, "fail")
        assert "noeviction" in checks["redis-eviction"]["remedy"]
        asyncio.run(set_policy("volatile-lru"))
        code, checks = diagnose(env | {"REDIS_URL": redis.url}, "--timeout", PATIENT)
        assert (code, checks["redis-eviction"]["verdict"]) == (1, "fail"), "TTL keys are the idempotency keys"
        assert "refuses to start" in checks["redis-eviction"]["summary"]
        allowed = env | {"REDIS_URL": redis.url, "REDIS_ALLOW_EVICTION": "true"}
        code, checks = diagnose(allowed, "--timeout", PATIENT)
        assert (code, checks["redis-eviction"]["verdict"]) == (0, "warn")
        assert "REDIS_ALLOW_EVICTION=true" in checks["redis-eviction"]["summary"]


def test_wrong_profile_on_cloud_run(diagnose: Run, env: dict[str, str], peers: dict[str, str]) -> None:
    env = _on_cloud_run(env, peers) | {"CLOUD_RUN_OPTIMIZED": "false"}
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert code == 1
    profile = checks["profile"]
    assert profile["verdict"] == "fail"
    assert profile["remedy"] == WRONG_PROFILE_FIX
    assert "set CLOUD_RUN_OPTIMIZED=true" in profile["remedy"]
    assert profile["details"]["values"]["AUTO_MISS_TIMEOUT"] == "45 (profile:local)"


def test_cloud_run_profile_off_cloud_run_and_low_overrides_warn(diagnose: Run, env: dict[str, str]) -> None:
    code, checks = diagnose(env | {"CLOUD_RUN_OPTIMIZED": "true"}, "--timeout", PATIENT)
    assert (code, checks["profile"]["verdict"]) == (0, "warn")
    assert "unset CLOUD_RUN_OPTIMIZED" in checks["profile"]["remedy"]
    env |= {"K_SERVICE": "q", "AUTH_MODE": "none", "INITIAL_STATUS_DELAY": "5", "GCE_METADATA_HOST": "127.0.0.1:9"}
    code, checks = diagnose(env, "--timeout", PATIENT, "--skip", "region")
    assert checks["profile"]["verdict"] == "warn"
    assert "INITIAL_STATUS_DELAY=5 < 20" in checks["profile"]["summary"]
    assert checks["profile"]["details"]["values"]["INITIAL_STATUS_DELAY"] == "5 (override)"


def test_plivo_credentials(diagnose: Run, env: dict[str, str]) -> None:
    code, checks = diagnose(env | {"PLIVO_AUTH_TOKEN": "wrong"}, "--timeout", PATIENT)
    assert (code, checks["plivo"]["verdict"]) == (1, "fail")
    assert "401" in checks["plivo"]["summary"]
    without = {k: v for k, v in env.items() if not k.startswith("PLIVO_AUTH")}
    code, checks = diagnose(without, "--timeout", PATIENT)
    assert (code, checks["plivo"]["verdict"]) == (0, "warn")
    assert "status polling from Plivo is disabled" in checks["plivo"]["summary"]
    code, checks = diagnose(env | {"DISPATCH_RATE": "5"}, "--timeout", PATIENT)
    assert checks["plivo"]["verdict"] == "warn" and "CPS" in checks["plivo"]["summary"]


def test_settings_errors_are_a_failed_check(diagnose: Run, env: dict[str, str]) -> None:
    code, checks = diagnose(env | {"REDIS_URL": "http://not-redis"}, "--timeout", PATIENT)
    assert (code, list(checks)) == (1, ["settings"])
    assert "REDIS_URL='http://not-redis' is not a Redis URL" in checks["settings"]["summary"]
    code, checks = diagnose(env | {"REQUEST_TIMEOUT": "soon"}, "--timeout", PATIENT)
    assert "REQUEST_TIMEOUT='soon' is not a whole number" in checks["settings"]["summary"]


async def _age(redis_url: str, prefix: str, by_s: int) -> list[str]:
    """Calls in three states, then moved back in time: one dispatched, one in a dead dispatch, one queued."""
    async with Redis.from_url(redis_url, decode_responses=True) as redis:
        store = CallStore(redis, prefix)
        ids = [(await store.enqueue(f"+1555000000{i}", "ops", {})).call_id for i in range(3)]
        assert (await store.claim(100, 100, 60_000, "w")).call_id == ids[0]
        await store.mark_dispatched(ids[0], "req-0", {}, 1_000)
        assert (await store.claim(100, 100, 60_000, "w")).call_id == ids[1]
        past = store.now_ms() - by_s * 1000
        await redis.hset(store.keys.call(ids[0]), "updated_at", past)
        await redis.zadd(store.keys.tracking, {ids[0]: past})
        await redis.zadd(store.keys.dispatching, {ids[1]: past})
        await redis.hset(store.keys.call(ids[2]), "created_at", past)
        await store.transition(ids[0], CallStatus.COMPLETED, "test")
        return ids


def test_stuck_calls_and_undelivered_results(diagnose: Run, env: dict[str, str], prefix: str) -> None:
    ids = asyncio.run(_age(env["REDIS_URL"], prefix, by_s=30))
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert code == 1  # a queued call and no dispatch worker heartbeat: nothing dispatches
    assert checks["queue-backlog"]["verdict"] == "fail"
    assert "no dispatch worker has a heartbeat" in checks["queue-backlog"]["summary"]
    assert checks["stuck-calls"]["verdict"] == "ok"  # 30 s is inside every window
    assert checks["results-outbox"]["verdict"] == "ok"

    prefix2 = prefix + "-old"
    ids = asyncio.run(_age(env["REDIS_URL"], prefix2, by_s=4000))
    code, checks = diagnose(env | {"REDIS_KEY_PREFIX": prefix2}, "--timeout", PATIENT)
    stuck = checks["stuck-calls"]
    assert stuck["verdict"] == "fail"
    assert "1 dispatching" in stuck["summary"]
    assert any(ids[1] in line and "lease ran out" in line for line in stuck["details"]["calls"])
    assert "dispatch reconciler is not running" in stuck["remedy"]
    outbox = checks["results-outbox"]  # the completed call settled just now: its result is not late yet
    assert (outbox["verdict"], outbox["details"]["pending"]) == ("ok", 1)


async def _dispatched_long_ago(redis_url: str, prefix: str, status: CallStatus, by_s: int) -> str:
    async with Redis.from_url(redis_url, decode_responses=True) as redis:
        store = CallStore(redis, prefix)
        call_id = (await store.enqueue("+15550001111", "ops", {})).call_id
        await store.claim(100, 100, 60_000, "w")
        await store.mark_dispatched(call_id, "req-x", {}, 1_000)
        if status is not CallStatus.DISPATCHED:
            await store.transition(call_id, status, "test")
        past = store.now_ms() - by_s * 1000
        await redis.hset(store.keys.call(call_id), "updated_at", past)
        await redis.zadd(store.keys.tracking, {call_id: past}, xx=True)
        await store.worker_heartbeat("instance-1/w0")
        return call_id


def test_call_past_its_window_is_stuck(diagnose: Run, env: dict[str, str], prefix: str) -> None:
    # local profile: dispatched/initiated window = 5 + 45 + 10 + 10 = 70 s
    call_id = asyncio.run(_dispatched_long_ago(env["REDIS_URL"], prefix, CallStatus.INITIATED, 71))
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert code == 1
    stuck = checks["stuck-calls"]
    assert stuck["verdict"] == "fail"
    first, second = stuck["details"]["calls"]
    assert re.fullmatch(rf"{call_id} initiated for 7[12] s \(window 70 s\)", first)
    assert re.fullmatch(rf"{call_id} status check overdue by 7[12] s", second)
    assert "status tracker" in stuck["remedy"]
    assert checks["queue-backlog"]["verdict"] == "ok"


def test_ringing_gets_a_longer_window(diagnose: Run, env: dict[str, str], prefix: str) -> None:
    # ringing: 70 s + Plivo's 120 s ring timeout; its overdue status check is what gives it away
    call_id = asyncio.run(_dispatched_long_ago(env["REDIS_URL"], prefix, CallStatus.RINGING, 150))
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert code == 1
    (line,) = checks["stuck-calls"]["details"]["calls"]
    assert re.fullmatch(rf"{call_id} status check overdue by 15[01] s", line)


async def _old_result(redis_url: str, prefix: str, by_s: int) -> None:
    async with Redis.from_url(redis_url, decode_responses=True) as redis:
        store = CallStore(redis, prefix)
        call_id = (await store.enqueue("+15550002222", "ops", {})).call_id
        await store.claim(100, 100, 60_000, "w")
        await store.transition(call_id, CallStatus.FAILED, "test")
        await redis.hset(store.keys.call(call_id), "updated_at", store.now_ms() - by_s * 1000)


def test_undelivered_results(diagnose: Run, env: dict[str, str], prefix: str) -> None:
    asyncio.run(_old_result(env["REDIS_URL"], prefix, 600))
    code, checks = diagnose(env, "--timeout", PATIENT)
    outbox = checks["results-outbox"]
    assert (code, outbox["verdict"]) == (0, "warn")
    assert outbox["summary"] == "1 result(s) undelivered, oldest settled 600 s ago"
    assert "backend" in outbox["remedy"]
    asyncio.run(_old_result(env["REDIS_URL"], prefix, 7200))
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert (code, checks["results-outbox"]["verdict"]) == (1, "fail")
    assert checks["results-outbox"]["details"]["pending"] == 2


def test_dead_letters_warn(diagnose: Run, env: dict[str, str], prefix: str) -> None:
    async def dead_letter() -> None:
        async with Redis.from_url(env["REDIS_URL"]) as redis:
            await redis.zadd(CallStore(redis, prefix).keys.dead_letters, {"abc:completed": 1})

    asyncio.run(dead_letter())
    code, checks = diagnose(env, "--timeout", PATIENT)
    assert (code, checks["results-outbox"]["verdict"]) == (0, "warn")
    assert checks["results-outbox"]["summary"] == "1 result(s) gave up delivery (dead letters)"
    assert f"{prefix}:outbox:dead" in checks["results-outbox"]["remedy"]


def test_unknown_skip_is_a_usage_error(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from callqueue.ops.diagnose import main

    with pytest.raises(SystemExit) as exited:
        main(["--skip", "agnet"], env)
    assert exited.value.code == 2
    assert "unknown check(s) agnet" in capsys.readouterr().err


def test_stack_outputs_point_diagnose_at_a_deployment(
    diagnose: Run, env: dict[str, str], peers: dict[str, str], tmp_path: Path
) -> None:
    outputs = {
        name: {"sensitive": False, "type": "string", "value": peers[role]}
        for name, role in (("agent_url", "agent"), ("backend_url", "forbidden"), ("queue_url", "queue"))
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    code, checks = diagnose(env, "--timeout", PATIENT, "--stack-outputs", str(path))
    assert code == 1
    assert checks["agent"]["verdict"] == "ok"
    assert checks["backend"]["verdict"] == "fail"  # the backend URL came from the outputs
    service = checks["queue-service"]
    assert service["verdict"] == "ok"
    assert service["details"]["profile"] == "local (CLOUD_RUN_OPTIMIZED=false)"
    assert wrong_profile("https://callqueue-queue-1.us-east1.run.app", "local")
    assert not wrong_profile("https://callqueue-queue-1.us-east1.run.app", "cloud_run")


def test_unreadable_stack_outputs(diagnose: Run, env: dict[str, str], tmp_path: Path) -> None:
    code, checks = diagnose(env, "--stack-outputs", str(tmp_path / "missing.json"))
    assert (code, list(checks)) == (1, ["stack-outputs"])
    (tmp_path / "empty.json").write_text("{}")
    code, checks = diagnose(env, "--stack-outputs", str(tmp_path / "empty.json"))
    assert "was the stack deployed?" in checks["stack-outputs"]["summary"]
