"""Policy tests on the synthesized Terraform JSON of every environment's services stack (not snapshots alone)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from callqueue.settings import PLAIN_VARIABLES, TIMING_VARIABLES
from infra.config import MemorystoreRedis
from infra.naming import REQUIRED_TERRAFORM, queue_image_by_digest
from tests.infra.conftest import Synthesis, container, data, resources

SERVICES = {"queue": "queue", "webhooks": "webhooks", "agent": "agent", "backend": "backend_service"}
REF = re.compile(r"^\$\{google_cloud_run_v2_service\.(\w+)\.uri\}$")
QUEUE_SA = "serviceAccount:${google_service_account.queue_sa.email}"
WEBHOOKS_SA = "serviceAccount:${google_service_account.webhooks_sa.email}"
PROJECT_NUMBER = "${data.google_project.project.number}"
KNOWN = {v.name for v in TIMING_VARIABLES} | {"CLOUD_RUN_OPTIMIZED"} | {v.name for v in PLAIN_VARIABLES}


@pytest.fixture(params=["staging", "production"])
def env_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stack(synthesis: Synthesis, name: str) -> dict[str, Any]:
    return synthesis.stacks[name]


def _env(synthesis: Synthesis, name: str, service_id: str = "queue") -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(_stack(synthesis, name), service_id)["env"]}


def test_every_environment_has_a_foundation_and_a_services_stack(synthesis: Synthesis) -> None:
    expected = set(synthesis.environments) | {f"{name}-foundation" for name in synthesis.environments}
    assert set(synthesis.stacks) == expected


def test_provider_labels_state_and_terraform_version(synthesis: Synthesis, env_name: str) -> None:
    from infra.provider import labels  # here, not at collection: it imports the provider bindings (see conftest)

    stack, env = _stack(synthesis, env_name), synthesis.environments[env_name]
    provider = stack["provider"]["google"][0]
    assert provider["default_labels"] == labels(env, "services") == {
        "app": "callqueue", "environment": env_name, "stack": "services", "managed_by": "cdktf",
    }  # fmt: skip
    assert provider["project"] == env.config.project
    assert stack["terraform"]["required_version"] == REQUIRED_TERRAFORM == ">= 1.5.0"
    assert stack["terraform"]["backend"] == {
        "gcs": {"bucket": env.config.state_bucket, "prefix": f"callqueue/{env_name}"}
    }


def test_four_services_in_the_one_region(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    services = resources(stack, "google_cloud_run_v2_service")
    assert set(services) == set(SERVICES.values())
    assert {s["location"] for s in services.values()} == {cfg.region}
    assert stack["provider"]["google"][0]["region"] == cfg.region
    for redis in resources(stack, "google_redis_instance").values():
        assert redis["region"] == cfg.region


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


@pytest.mark.parametrize("service_id", ["queue", "webhooks"])
def test_liveness_needs_no_redis_and_startup_checks_it(synthesis: Synthesis, env_name: str, service_id: str) -> None:
    """A Redis failover must not restart every instance: liveness is /api/live, which touches nothing."""
    probes = container(_stack(synthesis, env_name), service_id)
    assert probes["liveness_probe"]["http_get"]["path"] == "/api/live"
    assert probes["startup_probe"]["http_get"]["path"] == "/api/health"
    startup = probes["startup_probe"]
    assert startup["period_seconds"] * startup["failure_threshold"] >= 60, "a failover's worth of patience"


def test_queue_env_contract(synthesis: Synthesis, env_name: str) -> None:
    env = _env(synthesis, env_name)
    cfg = synthesis.environments[env_name].config
    timing = {v.name for v in TIMING_VARIABLES}
    assert timing | {"CLOUD_RUN_OPTIMIZED"} <= set(env)
    assert env["CLOUD_RUN_OPTIMIZED"]["value"] == "true"
    assert set(env) <= KNOWN, "every variable the stack sets is one the service reads"
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


def test_public_base_url_uses_the_project_number_the_project_reports(synthesis: Synthesis, env_name: str) -> None:
    """No hand-typed project number: a typo would break every callback signature silently."""
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    assert data(stack, "google_project")["project"]["project_id"] == cfg.project
    url = f"https://{cfg.name_prefix}-webhooks-{PROJECT_NUMBER}.{cfg.region}.run.app"
    assert _env(synthesis, env_name)["PUBLIC_BASE_URL"] == {"name": "PUBLIC_BASE_URL", "value": url}
    assert "project_number" not in synthesis.environments[env_name].config.model_dump()


def test_webhooks_service_is_the_queue_image_request_driven_and_public(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    services = resources(stack, "google_cloud_run_v2_service")
    hooks, queue = services["webhooks"], services["queue"]
    assert hooks["name"] == f"{cfg.name_prefix}-webhooks"
    assert container(stack, "webhooks")["image"] == container(stack, "queue")["image"]
    extra = [d for d in queue["depends_on"] if d not in hooks["depends_on"]]
    assert queue["depends_on"][: len(hooks["depends_on"])] == hooks["depends_on"], "the same secret grants"
    assert extra and all("collector" in d or "metrics" in d for d in extra), "plus the metrics collector's"
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
    assert hooks["template"].get("vpc_access") == queue["template"].get("vpc_access"), "reaches the queue's Redis"
    assert hooks["template"]["service_account"] == "${google_service_account.webhooks_sa.email}"
    assert hooks["invoker_iam_disabled"] is True, "public without an allUsers grant"


def test_webhooks_env_shares_redis_plivo_and_public_url(synthesis: Synthesis, env_name: str) -> None:
    queue, hooks = _env(synthesis, env_name), _env(synthesis, env_name, "webhooks")
    cfg = synthesis.environments[env_name].config
    assert hooks["SERVICE_ROLE"]["value"] == "webhooks"
    for name in (
        "PUBLIC_BASE_URL",
        "REDIS_URL",
        "REDIS_CA_CERT",
        "REDIS_KEY_PREFIX",
        "PLIVO_AUTH_ID",
        "PLIVO_AUTH_TOKEN",
    ):
        assert hooks.get(name) == queue.get(name), name
    for var in TIMING_VARIABLES:  # its handler schedules the next checks: the queue's cadence
        if var.name != "SERVICE_TIMEOUT":
            assert hooks[var.name] == queue[var.name], var.name
    assert hooks["SERVICE_TIMEOUT"]["value"] == str(cfg.webhooks.timeout_seconds)
    assert not {"AGENT_SERVER_URL", "BACKEND_URL", "DISPATCH_RATE", "MAX_CONCURRENT_CALLS"} & set(hooks)
    assert set(hooks) <= KNOWN


def test_urls_are_wired_by_reference(synthesis: Synthesis, env_name: str) -> None:
    env = _env(synthesis, env_name)
    agent, backend = REF.match(env["AGENT_SERVER_URL"]["value"]), REF.match(env["BACKEND_URL"]["value"])
    assert agent and agent.group(1) == "agent"
    assert backend and backend.group(1) == "backend_service"
    if isinstance(synthesis.environments[env_name].config.redis, MemorystoreRedis):
        queue = resources(_stack(synthesis, env_name), "google_cloud_run_v2_service")["queue"]
        assert queue["template"]["vpc_access"]["network_interfaces"] == [
            {
                "network": "${google_compute_network.network.name}",
                "subnetwork": "${google_compute_subnetwork.run_subnet.name}",
            }
        ]


@pytest.mark.parametrize("service_id", ["queue", "webhooks"])
def test_secrets_come_from_secret_manager_at_pinned_versions(
    synthesis: Synthesis, env_name: str, service_id: str
) -> None:
    env = _env(synthesis, env_name, service_id)
    cfg = synthesis.environments[env_name].config
    for var in PLAIN_VARIABLES:
        if var.secret:
            assert "value" not in env[var.name], var.name
    assert env["PLIVO_AUTH_ID"]["value_source"]["secret_key_ref"] == {
        "secret": cfg.plivo.auth_id_secret, "version": cfg.plivo.auth_id_version,
    }  # fmt: skip
    assert env["PLIVO_AUTH_TOKEN"]["value_source"]["secret_key_ref"] == {
        "secret": cfg.plivo.auth_token_secret, "version": cfg.plivo.auth_token_version,
    }  # fmt: skip
    for entry in env.values():
        if "value_source" in entry:
            version = entry["value_source"]["secret_key_ref"]["version"]
            assert version != "latest" and (version.isdigit() or version.startswith("${")), entry
    redis_url = env["REDIS_URL"]
    assert "value" not in redis_url, "the Redis URL carries the AUTH string: never a plain variable"
    assert redis_url["value_source"]["secret_key_ref"] == {
        "secret": "${google_secret_manager_secret.redis_url.secret_id}",
        "version": "${google_secret_manager_secret_version.redis_url_version.version}",
    }


def test_hand_made_secrets_are_checked_at_plan_time(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    checked = {d["secret_id"] for d in data(stack, "google_secret_manager_secret").values()}
    assert checked == {cfg.plivo.auth_id_secret, cfg.plivo.auth_token_secret}


def test_no_secret_value_in_the_json(synthesis: Synthesis, env_name: str) -> None:
    """The only secret payload the stack writes is the Redis URL, built from the instance's own attributes (and
    the collector's config, which is public)."""
    stack = _stack(synthesis, env_name)
    versions = resources(stack, "google_secret_manager_secret_version")
    assert set(versions) == {"redis_url_version", "collector_config_version"}
    assert json.loads(versions["collector_config_version"]["secret_data"])["kind"] == "RunMonitoring"
    payload = versions["redis_url_version"]["secret_data"]
    assert payload == (
        "rediss://:${google_redis_instance.redis.auth_string}@${google_redis_instance.redis.host}"
        ":${google_redis_instance.redis.port}/0"
    )
    assert json.dumps(stack).count("auth_string") == 1, "the AUTH string goes nowhere else"


def test_memorystore_cannot_evict_leak_or_forget(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    assert isinstance(cfg.redis, MemorystoreRedis)
    redis = resources(stack, "google_redis_instance")["redis"]
    assert redis["redis_configs"] == {"maxmemory-policy": "noeviction"}, "the default volatile-lru evicts TTL keys"
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    window = redis["maintenance_policy"]["weekly_maintenance_window"]
    assert window == [
        {"day": cfg.redis.maintenance_day,
         "start_time": {"hours": cfg.redis.maintenance_hour, "minutes": 0, "seconds": 0, "nanos": 0}}
    ]  # fmt: skip
    assert redis["persistence_config"]["persistence_mode"] == cfg.redis.persistence
    queue = _env(synthesis, env_name)
    assert queue["REDIS_CA_CERT"]["value"] == '${join("", google_redis_instance.redis.server_ca_certs[*].cert)}'
    assert redis["lifecycle"]["prevent_destroy"] is cfg.deletion_protection


def test_production_redis_is_replicated_and_persistent(synthesis: Synthesis) -> None:
    redis = resources(_stack(synthesis, "production"), "google_redis_instance")["redis"]
    assert redis["tier"] == "STANDARD_HA"
    assert redis["persistence_config"] == {"persistence_mode": "RDB", "rdb_snapshot_period": "ONE_HOUR"}
    assert redis["lifecycle"] == {"prevent_destroy": True}


def test_production_protects_identities_network_and_redis(synthesis: Synthesis) -> None:
    stack = _stack(synthesis, "production")
    for kind in ("google_service_account", "google_compute_network", "google_redis_instance"):
        for name, resource in resources(stack, kind).items():
            assert resource["lifecycle"]["prevent_destroy"] is True, f"{kind}.{name}"
    for name, service in resources(stack, "google_cloud_run_v2_service").items():
        assert service["deletion_protection"] is True, name
    staging = _stack(synthesis, "staging")
    assert all(not r["lifecycle"]["prevent_destroy"] for r in resources(staging, "google_service_account").values())


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
    public = {name for name, s in resources(stack, "google_cloud_run_v2_service").items() if s["invoker_iam_disabled"]}
    by_file = {"queue": cfg.queue.public, "agent": cfg.agent.public, "backend": cfg.backend.public}
    expected = {"webhooks"} | {SERVICES[role] for role, public_in_file in by_file.items() if public_in_file}
    assert public == expected
    assert "agent" in public, "Plivo's answer webhook and media websocket must reach the agent"
    assert not {"queue", "backend_service"} & public, "queue and backend stay private in the committed files"
    assert "allUsers" not in synthesis.raw[env_name] and "allAuthenticatedUsers" not in synthesis.raw[env_name]
    readers = {
        (m["secret_id"], m["member"], m["role"])
        for m in resources(stack, "google_secret_manager_secret_iam_member").values()
    }
    redis_secret = "${google_secret_manager_secret.redis_url.secret_id}"
    expected_secrets = {cfg.plivo.auth_id_secret, cfg.plivo.auth_token_secret, redis_secret}
    accessor = "roles/secretmanager.secretAccessor"
    shared = {(secret, sa, accessor) for secret in expected_secrets for sa in (QUEUE_SA, WEBHOOKS_SA)}
    collector = ("${google_secret_manager_secret.collector_config.secret_id}", QUEUE_SA, accessor)
    assert readers == shared | {collector}, "only the queue reads the collector's config"


def test_queue_runs_the_digest_of_its_release_record(synthesis: Synthesis, env_name: str) -> None:
    """One image per commit, deployed by digest: the stack runs exactly what releases/<env>.json names."""
    stack, env = _stack(synthesis, env_name), synthesis.environments[env_name]
    release = synthesis.releases[env_name]
    image = queue_image_by_digest(env, release.digest)
    assert image == f"{env.registry.url}/callqueue-queue@{release.digest}"
    assert container(stack, "queue")["image"] == container(stack, "webhooks")["image"] == image
    assert stack["output"]["queue_image"]["value"] == image
    check = data(stack, "google_artifact_registry_docker_image")["queue_image_in_registry"]
    assert check == {
        "//": check["//"], "project": env.registry.project, "location": env.registry.location,
        "repository_id": env.registry.repository, "image_name": f"callqueue-queue@{release.digest}",
    }  # fmt: skip
    assert "terraform_data" not in stack.get("resource", {}) and "local-exec" not in synthesis.raw[env_name]


def test_production_pulls_from_the_registry_staging_builds_into(synthesis: Synthesis) -> None:
    staging, production = synthesis.environments["staging"], synthesis.environments["production"]
    assert production.registry == staging.registry and staging.owns_registry and not production.owns_registry
    image = container(_stack(synthesis, "production"), "queue")["image"]
    assert image.startswith(f"{staging.registry.url}/callqueue-queue@sha256:")
    assert image.endswith(synthesis.releases["production"].digest)


@pytest.mark.parametrize(("service_id", "role"), [("agent", "agent"), ("backend_service", "backend")])
def test_agent_and_backend_images_are_checked_and_run_by_digest(
    synthesis: Synthesis, env_name: str, service_id: str, role: str
) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    configured = getattr(cfg, role).image
    m = re.match(r"^(?P<loc>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>[^/]+)/(?P<name>.+)$", configured)
    assert m, "the committed files use Artifact Registry images"
    check = data(stack, "google_artifact_registry_docker_image")[f"{role}_image_in_registry"]
    assert (check["location"], check["project"], check["repository_id"], check["image_name"]) == (
        m["loc"], m["project"], m["repo"], m["name"],
    )  # fmt: skip
    image = container(stack, service_id)["image"]
    assert image == f"${{data.google_artifact_registry_docker_image.{role}_image_in_registry.self_link}}"


def test_the_services_stack_owns_no_registry_apis_or_state_bucket(synthesis: Synthesis, env_name: str) -> None:
    """Destroying an environment deletes no image, no API, no state: the foundation owns those."""
    stack = _stack(synthesis, env_name)
    owned = set(stack.get("resource", {}))
    assert not owned & {"google_artifact_registry_repository", "google_project_service", "google_storage_bucket"}


def test_outputs(synthesis: Synthesis, env_name: str) -> None:
    stack, cfg = _stack(synthesis, env_name), synthesis.environments[env_name].config
    assert {"queue_url", "webhooks_url", "agent_url", "backend_url", "queue_image"} <= set(stack["output"])
    assert stack["output"]["webhooks_url"]["value"] == "${google_cloud_run_v2_service.webhooks.uri}"
    if isinstance(cfg.redis, MemorystoreRedis):
        assert stack["output"]["redis_host"]["value"] == "${google_redis_instance.redis.host}"
