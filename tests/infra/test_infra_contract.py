"""THE contract: the synthesized environments of the queue and of its webhooks twin, read by the service's own
settings loader, yield the Cloud Run timing profile with SERVICE_TIMEOUT the service's request timeout, the role
each service plays, one PUBLIC_BASE_URL (the webhooks service's, where Plivo calls back), and a TLS Redis: the
URL the stack writes into the REDIS_URL secret and the CA it passes as REDIS_CA_CERT."""

from __future__ import annotations

import re

import pytest

from callqueue.settings import Settings, load_settings
from infra.naming import deterministic_url
from tests.infra.conftest import Synthesis, container, resources
from tests.tls_proxy import CA_PEM

# Terraform expressions stand for values known only at apply time; give them plausible stand-ins.
_STAND_INS = {
    r"\$\{google_cloud_run_v2_service\.(\w+)\.uri\}": r"https://\1-0000.a.run.app",
    r"\$\{google_redis_instance\.\w+\.host\}": "10.0.0.3",
    r"\$\{google_redis_instance\.\w+\.port\}": "6378",
    r"\$\{google_redis_instance\.\w+\.auth_string\}": "0b1d-auth-string",
    r"\$\{data\.google_project\.project\.number\}": "123456789012",
    r'\$\{join\("", google_redis_instance\.redis\.server_ca_certs\[\*\]\.cert\)\}': CA_PEM.strip(),
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
    """What the service reads at start-up: the plain values, and REDIS_URL as the stack writes it into its secret
    (the Plivo secrets are absent, as they are from the JSON)."""
    stack = synthesis.stacks[env_name]
    env = {e["name"]: _resolve(e["value"]) for e in container(stack, service_id)["env"] if "value" in e}
    written = resources(stack, "google_secret_manager_secret_version")["redis_url_version"]["secret_data"]
    return load_settings(env | {"REDIS_URL": _resolve(written)})


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
    assert settings.public_base_url == deterministic_url(synthesis.environments[env_name], "webhooks", "123456789012")
    assert settings.redis_url.startswith("rediss://:0b1d-auth-string@10.0.0.3:6378/")
    assert settings.redis_ca_cert == CA_PEM.strip() + "\n"
    assert settings.redis_allow_eviction is False


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_webhooks_service_reads_its_role_and_the_shared_url(synthesis: Synthesis, env_name: str) -> None:
    hooks, queue = _settings(synthesis, env_name, "webhooks"), _settings(synthesis, env_name, "queue")
    assert hooks.service_role == "webhooks"
    assert hooks.public_base_url == queue.public_base_url, "the V3 signature covers the full public URL"
    assert hooks.public_base_url.startswith("https://") and "-webhooks-" in hooks.public_base_url
    assert (hooks.redis_url, hooks.redis_key_prefix, hooks.redis_ca_cert) == (
        queue.redis_url, queue.redis_key_prefix, queue.redis_ca_cert,
    )  # fmt: skip
    webhooks = resources(synthesis.stacks[env_name], "google_cloud_run_v2_service")["webhooks"]
    assert hooks.timing.name == "cloud_run"
    assert f"{hooks.timing.service_timeout}s" == webhooks["template"]["timeout"]
    same = {k: v for k, v in hooks.timing.as_env().items() if k != "SERVICE_TIMEOUT"}
    assert same == {k: v for k, v in queue.timing.as_env().items() if k != "SERVICE_TIMEOUT"}
