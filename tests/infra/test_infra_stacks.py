"""Policy tests on the synthesized Terraform JSON of every environment (partial inventories, not full diffs)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from callqueue.settings import PLAIN_VARIABLES, TIMING_VARIABLES
from infra.config import MemorystoreRedis
from infra.naming import built_queue_image, deterministic_url
from tests.infra.conftest import Synthesis, container, resources

SERVICES = {"queue": "queue", "webhooks": "webhooks", "agent": "agent", "backend": "backend_service"}
REF = re.compile(r"^\$\{google_cloud_run_v2_service\.(\w+)\.uri\}$")
QUEUE_SA = "serviceAccount:${google_service_account.queue_sa.email}"
WEBHOOKS_SA = "serviceAccount:${google_service_account.webhooks_sa.email}"


@pytest.fixture(params=["staging", "production"])
def env_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stack(synthesis: Synthesis, name: str) -> dict[str, Any]:
    return synthesis.stacks[name]


def _env(synthesis: Synthesis, name: str, service_id: str = "queue") -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(_stack(synthesis, name), service_id)["env"]}


def test_every_environment_file_has_a_stack(synthesis: Synthesis) -> None:
    assert set(synthesis.stacks) == set(synthesis.environments)


def test_four_services_in_the_one_region(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    services = resources(stack, "google_cloud_run_v2_service")
    assert set(services) == set(SERVICES.values())
    assert {s["location"] for s in services.values()} == {cfg.region}
    assert stack["provider"]["google"][0]["region"] == cfg.region
    for redis in resources(stack, "google_redis_instance").values():
        assert redis["region"] == cfg.region
    for registry in resources(stack, "google_artifact_registry_repository").values():
        assert registry["location"] == cfg.region


def test_timeouts_limits_and_no_perpetual_diffs(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    services = resources(stack, "google_cloud_run_v2_service")
    assert services["queue"]["template"]["timeout"] == "300s"
    assert services["backend_service"]["template"]["timeout"] == "300s"
    assert services["webhooks"]["template"]["timeout"] == f"{cfg.webhooks.timeout_seconds}s" == "300s"
    assert services["agent"]["template"]["timeout"] == f"{cfg.agent.timeout_seconds}s"
    for service_id, service in services.items():
        assert service["deletion_protection"] is cfg.deletion_protection
        assert service["lifecycle"]["ignore_changes"] == ["client", "client_version"]
        limits = container(stack, service_id)["resources"]["limits"]
        assert set(limits) == {"cpu", "memory"}, service_id


def test_agent_timeout_covers_the_longest_call(synthesis: Synthesis, env_name: str) -> None:
    cfg = synthesis.environments[env_name].config
    agent = resources(_stack(synthesis, env_name), "google_cloud_run_v2_service")["agent"]
    assert int(agent["template"]["timeout"].removesuffix("s")) >= cfg.agent.longest_call_seconds


def test_queue_keeps_cpu_and_an_instance(synthesis: Synthesis, env_name: str) -> None:
    stack = _stack(synthesis, env_name)
    queue = resources(stack, "google_cloud_run_v2_service")["queue"]
    assert container(stack, "queue")["resources"]["cpu_idle"] is False
    assert queue["template"]["scaling"]["min_instance_count"] >= 1
    assert container(stack, "queue")["startup_probe"]["http_get"]["path"] == "/api/health"


def test_queue_env_contract(synthesis: Synthesis, env_name: str) -> None:
    env = _env(synthesis, env_name)
    cfg = synthesis.environments[env_name].config
    timing = {v.name for v in TIMING_VARIABLES}
    assert timing | {"CLOUD_RUN_OPTIMIZED"} <= set(env)
    assert env["CLOUD_RUN_OPTIMIZED"]["value"] == "true"
    known = timing | {"CLOUD_RUN_OPTIMIZED"} | {v.name for v in PLAIN_VARIABLES}
    assert set(env) <= known, "every variable the stack sets is one the service reads"
    for name in (
        "AGENT_SERVER_URL",
        "BACKEND_URL",
        "REDIS_URL",
        "PUBLIC_BASE_URL",
        "PLIVO_AUTH_ID",
        "PLIVO_AUTH_TOKEN",
    ):
        assert name in env, name
    if cfg.queue.dispatch_rate is not None:
        assert env["DISPATCH_RATE"]["value"] == str(cfg.queue.dispatch_rate)
    if cfg.queue.max_concurrent_calls is not None:
        assert env["MAX_CONCURRENT_CALLS"]["value"] == str(cfg.queue.max_concurrent_calls)
    assert env["SERVICE_ROLE"]["value"] == "all"
    assert env["PUBLIC_BASE_URL"]["value"] == (
        f"https://{cfg.name_prefix}-webhooks-{cfg.project_number}.{cfg.region}.run.app"
    ), "Plivo calls back on the public webhooks service, never on the private queue"


def test_webhooks_service_is_the_queue_image_request_driven(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    services = resources(stack, "google_cloud_run_v2_service")
    hooks, queue = services["webhooks"], services["queue"]
    assert hooks["name"] == f"{cfg.name_prefix}-webhooks"
    assert container(stack, "webhooks")["image"] == container(stack, "queue")["image"]
    extra = [d for d in queue["depends_on"] if d not in hooks["depends_on"]]
    assert queue["depends_on"][: len(hooks["depends_on"])] == hooks["depends_on"], "same build, same secret grants"
    assert all("monitoring" in d or "collector" in d or "metrics" in d for d in extra), "plus the metrics collector's"
    assert container(stack, "webhooks")["resources"]["cpu_idle"] is True
    assert container(stack, "webhooks")["resources"]["limits"] == {
        "cpu": cfg.webhooks.cpu,
        "memory": cfg.webhooks.memory,
    }
    assert hooks["template"]["scaling"] == {
        "min_instance_count": cfg.webhooks.min_instances,
        "max_instance_count": cfg.webhooks.max_instances,
    }
    assert hooks["template"]["max_instance_request_concurrency"] == cfg.webhooks.concurrency
    assert container(stack, "webhooks")["startup_probe"]["http_get"]["path"] == "/api/health"
    assert hooks["template"].get("vpc_access") == queue["template"].get("vpc_access"), "reaches the queue's Redis"
    assert hooks["template"]["service_account"] == "${google_service_account.webhooks_sa.email}"


def test_webhooks_env_shares_redis_plivo_and_public_url(synthesis: Synthesis, env_name: str) -> None:
    queue, hooks = _env(synthesis, env_name), _env(synthesis, env_name, "webhooks")
    cfg = synthesis.environments[env_name].config
    assert hooks["SERVICE_ROLE"]["value"] == "webhooks"
    url = deterministic_url(synthesis.environments[env_name], "webhooks")
    assert url == f"https://{cfg.name_prefix}-webhooks-{cfg.project_number}.{cfg.region}.run.app"
    assert hooks["PUBLIC_BASE_URL"] == queue["PUBLIC_BASE_URL"] == {"name": "PUBLIC_BASE_URL", "value": url}
    for name in ("REDIS_URL", "REDIS_KEY_PREFIX", "PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN"):
        assert hooks.get(name) == queue.get(name), name
    for name in ("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN"):
        assert "value" not in hooks[name] and "secret_key_ref" in hooks[name]["value_source"], name
    for var in TIMING_VARIABLES:  # its handler schedules the next checks: the queue's cadence
        if var.name != "SERVICE_TIMEOUT":
            assert hooks[var.name] == queue[var.name], var.name
    assert hooks["SERVICE_TIMEOUT"]["value"] == str(cfg.webhooks.timeout_seconds)
    assert not {"AGENT_SERVER_URL", "BACKEND_URL", "DISPATCH_RATE", "MAX_CONCURRENT_CALLS"} & set(hooks)
    known = {v.name for v in TIMING_VARIABLES} | {"CLOUD_RUN_OPTIMIZED"} | {v.name for v in PLAIN_VARIABLES}
    assert set(hooks) <= known


def test_urls_are_wired_by_reference(synthesis: Synthesis, env_name: str) -> None:
    env = _env(synthesis, env_name)
    agent, backend = REF.match(env["AGENT_SERVER_URL"]["value"]), REF.match(env["BACKEND_URL"]["value"])
    assert agent and agent.group(1) == "agent"
    assert backend and backend.group(1) == "backend_service"
    if isinstance(synthesis.environments[env_name].config.redis, MemorystoreRedis):
        assert env["REDIS_URL"]["value"] == (
            "redis://${google_redis_instance.redis.host}:${google_redis_instance.redis.port}/0"
        )
        queue = resources(_stack(synthesis, env_name), "google_cloud_run_v2_service")["queue"]
        interfaces = queue["template"]["vpc_access"]["network_interfaces"]
        assert interfaces == [
            {
                "network": "${google_compute_network.network.name}",
                "subnetwork": "${google_compute_subnetwork.run_subnet.name}",
            }
        ]


@pytest.mark.parametrize("service_id", ["queue", "webhooks"])
def test_secrets_come_from_secret_manager_only(synthesis: Synthesis, env_name: str, service_id: str) -> None:
    env = _env(synthesis, env_name, service_id)
    cfg = synthesis.environments[env_name].config
    for var in PLAIN_VARIABLES:
        if var.secret:
            entry = env[var.name]
            assert "value" not in entry, var.name
            assert entry["value_source"]["secret_key_ref"]["version"] == cfg.plivo.secret_version
    assert env["PLIVO_AUTH_ID"]["value_source"]["secret_key_ref"]["secret"] == cfg.plivo.auth_id_secret
    assert env["PLIVO_AUTH_TOKEN"]["value_source"]["secret_key_ref"]["secret"] == cfg.plivo.auth_token_secret
    text = synthesis.raw[env_name]
    versions = resources(synthesis.stacks[env_name], "google_secret_manager_secret_version")
    assert set(versions) == {"collector_config_version"}, "the only secret written is the collector's (public) config"
    for version in versions.values():
        text = text.replace(json.dumps(version["secret_data"])[1:-1], "")
    assert "auth_string" not in text and text.count("secret_data") == 1  # no secret value reaches state or JSON


def test_iam(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    accounts = resources(stack, "google_service_account")
    assert set(accounts) == {"queue_sa", "webhooks_sa", "agent_sa", "backend_sa"}
    for role, service_id in SERVICES.items():
        service = resources(stack, "google_cloud_run_v2_service")[service_id]
        assert service["template"]["service_account"] == f"${{google_service_account.{role}_sa.email}}"
    grants = {
        (m["name"], m["member"])
        for m in resources(stack, "google_cloud_run_v2_service_iam_member").values()
        if m["role"] == "roles/run.invoker"
    }
    assert ("${google_cloud_run_v2_service.agent.name}", QUEUE_SA) in grants
    assert ("${google_cloud_run_v2_service.backend_service.name}", QUEUE_SA) in grants
    expected_public = {"webhooks"} | {
        SERVICES[role]
        for role, svc in (("queue", cfg.queue), ("agent", cfg.agent), ("backend", cfg.backend))
        if "allUsers" in svc.invokers
    }
    public = {name.split(".")[1] for name, member in grants if member == "allUsers"}
    assert public == expected_public
    assert "agent" in public, "Plivo's answer webhook and media websocket must reach the agent"
    assert "webhooks" in public, "Plivo's ring and hangup callbacks must reach the webhooks service"
    assert not {"queue", "backend_service"} & public, "queue and backend stay private in the committed files"
    on_webhooks = {member for name, member in grants if name == "${google_cloud_run_v2_service.webhooks.name}"}
    assert on_webhooks == {"allUsers"}
    readers = {
        (m["secret_id"], m["member"], m["role"])
        for m in resources(stack, "google_secret_manager_secret_iam_member").values()
    }
    expected = {cfg.plivo.auth_id_secret, cfg.plivo.auth_token_secret}
    if not isinstance(cfg.redis, MemorystoreRedis):
        expected.add(cfg.redis.url_secret)
    accessor = "roles/secretmanager.secretAccessor"
    collector = ("${google_secret_manager_secret.collector_config.secret_id}", QUEUE_SA, accessor)
    assert readers == {(secret, sa, accessor) for secret in expected for sa in (QUEUE_SA, WEBHOOKS_SA)} | {collector}


def test_queue_image_is_built_at_its_content_tag(synthesis: Synthesis, env_name: str) -> None:
    stack, env = _stack(synthesis, env_name), synthesis.environments[env_name]
    image = container(stack, "queue")["image"]
    _, tag = image.rsplit(":", 1)
    assert tag == synthesis.tag and tag != "latest"
    assert image == built_queue_image(env, synthesis.tag)
    build = resources(stack, "terraform_data")["queue_image_build"]
    assert build["triggers_replace"] == image
    exec_ = build["provisioner"][0]["local-exec"]
    assert f"--tag={image}" in exec_["command"]
    assert exec_["working_dir"] == "${path.root}/../../.."
    queue = resources(stack, "google_cloud_run_v2_service")["queue"]
    assert "terraform_data.queue_image_build" in queue["depends_on"]
    assert stack["output"]["queue_image"]["value"] == image
    assert container(stack, "webhooks")["image"] == image
    webhooks = resources(stack, "google_cloud_run_v2_service")["webhooks"]
    assert "terraform_data.queue_image_build" in webhooks["depends_on"]


def test_apis_backend_and_outputs(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    apis = {r["service"] for r in resources(stack, "google_project_service").values()}
    for api in ("run", "artifactregistry", "cloudbuild", "secretmanager", "compute", "iam"):
        assert f"{api}.googleapis.com" in apis
    assert stack["terraform"]["backend"] == {"gcs": {"bucket": cfg.state_bucket, "prefix": f"callqueue/{env_name}"}}
    assert {"queue_url", "webhooks_url", "agent_url", "backend_url", "queue_image"} <= set(stack["output"])
    assert stack["output"]["webhooks_url"]["value"] == "${google_cloud_run_v2_service.webhooks.uri}"
    if isinstance(cfg.redis, MemorystoreRedis):
        assert stack["output"]["redis_host"]["value"] == "${google_redis_instance.redis.host}"
