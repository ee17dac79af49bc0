"""THE contract: the queue's synthesized environment, read by the service's own settings loader, yields the
Cloud Run timing profile, and SERVICE_TIMEOUT is the service's request timeout."""

from __future__ import annotations

import re

import pytest

from callqueue.settings import load_settings
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


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_settings_loader_reads_the_cloud_run_profile(synthesis: Synthesis, env_name: str) -> None:
    stack = synthesis.stacks[env_name]
    plain = {e["name"]: _resolve(e["value"]) for e in container(stack, "queue")["env"] if "value" in e}
    settings = load_settings(plain)
    timing = settings.timing
    assert timing.name == "cloud_run"
    assert {k: getattr(timing, k) for k in CLOUD_RUN_TABLE} == CLOUD_RUN_TABLE
    assert set(timing.sources.values()) == {"override"}, "every timing value is written explicitly"
    queue = resources(stack, "google_cloud_run_v2_service")["queue"]
    assert f"{timing.service_timeout}s" == queue["template"]["timeout"]
    assert settings.agent_server_url.startswith("https://agent-")
    assert settings.backend_url.startswith("https://backend_service-")
    assert settings.public_base_url.endswith(".run.app")
