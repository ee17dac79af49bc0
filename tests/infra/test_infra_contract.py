"""THE contract: the synthesized environments of the queue and of its webhooks twin, read by the service's own
settings loader, yield the Cloud Run timing profile with SERVICE_TIMEOUT the service's request timeout, the role
each service plays, and one PUBLIC_BASE_URL: the webhooks service's, where Plivo calls back."""

from __future__ import annotations

import re

import pytest

from callqueue.settings import Settings, load_settings
from infra.naming import deterministic_url
from tests.infra.conftest import Synthesis, container, resources

# Terraform expressions stand for values known only at apply time; give them plausible stand-ins.
_STAND_INS = {
    r"\$\{google_cloud_run_v2_service\.(\w+)\.uri\}": r"https://\1-0000.a.run.app",
    r"\$\{google_redis_instance\.\w+\.host\}": "10.0.0.3",
    r"\$\{google_redis_instance\.\w+\.port\}": "6379",
}
CLOUD_RUN_TABLE = {
    "initial_status_delay": 20,
    "status_check_interval": 15,
    "request_timeout": 30,
    "max_status_retries": 3,
    "max_consecutive_errors": 6,
    "auto_miss_timeout": 60,
    "service_timeout": 300,
}


def _resolve(value: str) -> str:
    for pattern, stand_in in _STAND_INS.items():
        value = re.sub(pattern, stand_in, value)
    assert "${" not in value, f"unexpected Terraform expression in {value!r}"
    return value


def _settings(synthesis: Synthesis, env_name: str, service_id: str) -> Settings:
    """What the service reads at start-up: the plain values (secrets are absent here, as they are in the JSON)."""
    env = container(synthesis.stacks[env_name], service_id)["env"]
    return load_settings({e["name"]: _resolve(e["value"]) for e in env if "value" in e})


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_settings_loader_reads_the_cloud_run_profile(synthesis: Synthesis, env_name: str) -> None:
    stack = synthesis.stacks[env_name]
    settings = _settings(synthesis, env_name, "queue")
    timing = settings.timing
    assert timing.name == "cloud_run"
    assert {k: getattr(timing, k) for k in CLOUD_RUN_TABLE} == CLOUD_RUN_TABLE
    assert set(timing.sources.values()) == {"override"}, "every timing value is written explicitly"
    queue = resources(stack, "google_cloud_run_v2_service")["queue"]
    assert f"{timing.service_timeout}s" == queue["template"]["timeout"]
    assert settings.agent_server_url.startswith("https://agent-")
    assert settings.backend_url.startswith("https://backend_service-")
    assert settings.service_role == "all"
    assert settings.public_base_url == deterministic_url(synthesis.environments[env_name], "webhooks")


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_webhooks_service_reads_its_role_and_the_shared_url(synthesis: Synthesis, env_name: str) -> None:
    hooks, queue = _settings(synthesis, env_name, "webhooks"), _settings(synthesis, env_name, "queue")
    assert hooks.service_role == "webhooks"
    assert hooks.public_base_url == queue.public_base_url, "the V3 signature covers the full public URL"
    assert hooks.public_base_url.startswith("https://") and "-webhooks-" in hooks.public_base_url
    assert (hooks.redis_url, hooks.redis_key_prefix) == (queue.redis_url, queue.redis_key_prefix)
    webhooks = resources(synthesis.stacks[env_name], "google_cloud_run_v2_service")["webhooks"]
    assert hooks.timing.name == "cloud_run"
    assert f"{hooks.timing.service_timeout}s" == webhooks["template"]["timeout"]
    same = {k: v for k, v in hooks.timing.as_env().items() if k != "SERVICE_TIMEOUT"}
    assert same == {k: v for k, v in queue.timing.as_env().items() if k != "SERVICE_TIMEOUT"}
