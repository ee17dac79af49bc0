"""Policy tests on the synthesized JSON: the collector beside the queue only, the dashboard, the alert policies
with the environment file's thresholds and channels, and metric names the service really exposes. All of it is in
each environment's services stack; only the Monitoring API is the foundation's."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from callqueue.metrics import catalog
from tests.infra.conftest import Synthesis, resources

EXPOSED = {v for k, v in vars(catalog).items() if k.isupper() and isinstance(v, str) and v.startswith("callqueue_")}


@pytest.fixture(params=["staging", "production"])
def env_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _queries(stack: dict[str, Any]) -> list[str]:
    board = json.loads(next(iter(resources(stack, "google_monitoring_dashboard").values()))["dashboard_json"])
    found = [d["timeSeriesQuery"]["prometheusQuery"] for t in board["mosaicLayout"]["tiles"]
             for d in t["widget"]["xyChart"]["dataSets"]]  # fmt: skip
    for policy in resources(stack, "google_monitoring_alert_policy").values():
        for condition in policy["conditions"]:
            if "condition_prometheus_query_language" in condition:
                found.append(condition["condition_prometheus_query_language"]["query"])
    return found


def test_the_collector_runs_beside_the_queue_and_nowhere_else(synthesis: Synthesis, env_name: str) -> None:
    # Here, not at collection: infra.monitoring imports the provider bindings (see conftest).
    from infra.monitoring import COLLECTOR_CONTAINER, METRIC_WRITER, run_monitoring_config

    stack = synthesis.stacks[env_name]
    services = resources(stack, "google_cloud_run_v2_service")
    queue = services["queue"]["template"]
    names = [c.get("name") for c in queue["containers"]]
    assert names == ["queue", COLLECTOR_CONTAINER]
    collector = queue["containers"][1]
    cfg = synthesis.environments[env_name].config.monitoring
    assert collector["image"] == cfg.collector_image and collector["depends_on"] == ["queue"]
    assert "ports" not in collector, "only the queue takes requests"
    assert collector["volume_mounts"] == [{"mount_path": "/etc/rungmp/", "name": "monitoring-config"}]
    pinned = "${google_secret_manager_secret_version.collector_config_version.version}"
    assert queue["volumes"][0]["secret"]["items"] == [{"path": "config.yaml", "version": pinned}], "never latest"
    for other in ("webhooks", "agent", "backend_service"):
        assert len(services[other]["template"]["containers"]) == 1, other
    config = resources(stack, "google_secret_manager_secret_version")["collector_config_version"]["secret_data"]
    doc = json.loads(config)
    assert doc["kind"] == "RunMonitoring"
    assert doc["spec"]["endpoints"] == [
        {"port": 8080, "path": "/metrics", "interval": f"{cfg.scrape_interval_seconds}s"}
    ]
    assert config == run_monitoring_config(synthesis.environments[env_name], 8080)
    writers = [m for m in resources(stack, "google_project_iam_member").values() if m["role"] == METRIC_WRITER]
    assert [w["member"] for w in writers] == ["serviceAccount:${google_service_account.queue_sa.email}"]
    foundation = synthesis.stacks[f"{env_name}-foundation"]  # the foundation enables every API (make bootstrap)
    api = [a["service"] for a in resources(foundation, "google_project_service").values()]
    assert "monitoring.googleapis.com" in api


def test_the_dashboard_shows_what_the_issue_lists(synthesis: Synthesis, env_name: str) -> None:
    stack = synthesis.stacks[env_name]
    board = json.loads(next(iter(resources(stack, "google_monitoring_dashboard").values()))["dashboard_json"])
    assert board["displayName"] == f"callqueue ({env_name})"
    titles = " | ".join(t["widget"]["title"] for t in board["mosaicLayout"]["tiles"]).lower()
    for wanted in (
        "queue depth",
        "oldest queued",
        "pace",
        "outcomes",
        "dial to outcome",
        "outbox",
        "plivo",
        "instances",
        "5xx",
    ):
        assert wanted in titles, wanted
    text = " ".join(_queries(stack))
    assert 'service_name="callqueue-queue"' in text and 'response_code_class="5xx"' in text


def test_every_queried_metric_is_one_the_service_exposes(synthesis: Synthesis, env_name: str) -> None:
    for query in _queries(synthesis.stacks[env_name]):
        for name in re.findall(r"\b(callqueue_[a-z_]+)", query):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in EXPOSED, f"{name} in {query!r} is not in callqueue.metrics.catalog"


def test_alert_policies_carry_the_file_thresholds_and_channels(synthesis: Synthesis, env_name: str) -> None:
    stack = synthesis.stacks[env_name]
    cfg = synthesis.environments[env_name].config.monitoring
    policies = resources(stack, "google_monitoring_alert_policy")
    assert set(policies) == {f"alert_{k}" for k in ("oldest_queued", "stuck_in_flight", "dead_letters",
                             "failure_ratio", "no_dispatch_heartbeat", "redis_memory")}  # fmt: skip

    def query(key: str) -> str:
        return str(policies[f"alert_{key}"]["conditions"][0]["condition_prometheus_query_language"]["query"])

    assert query("oldest_queued").endswith(f"> {cfg.oldest_queued_minutes * 60}")
    assert query("stuck_in_flight").endswith(f"> {cfg.stuck_in_flight_minutes * 60}")
    assert query("dead_letters") == "max(callqueue_outbox_dead_letters) > 0"
    assert f"> {cfg.failure_ratio} and on()" in query("failure_ratio") and query("failure_ratio").endswith(
        f">= {cfg.failure_min_calls}"
    )
    assert 'outcome=~"failed|unknown|missed"' in query("failure_ratio") and "[15m]" in query("failure_ratio")
    heartbeat = policies["alert_no_dispatch_heartbeat"]["conditions"][0]["condition_prometheus_query_language"]
    assert "absent(callqueue_live_dispatch_workers)" in heartbeat["query"]
    assert heartbeat["duration"] == f"{cfg.heartbeat_minutes * 60}s"
    redis = policies["alert_redis_memory"]["conditions"][0]["condition_threshold"]
    assert redis["threshold_value"] == cfg.redis_memory_ratio and "memory/usage_ratio" in redis["filter"]
    lookups = stack["data"]["google_monitoring_notification_channel"]
    assert sorted(c["display_name"] for c in lookups.values()) == sorted(cfg.notification_channels)
    assert cfg.notification_channels, "every environment names who is told"
    for policy in policies.values():
        assert len(policy["notification_channels"]) == len(cfg.notification_channels)
        assert policy["documentation"]["content"]


def test_thresholds_differ_per_environment(synthesis: Synthesis) -> None:
    staging = synthesis.environments["staging"].config.monitoring
    production = synthesis.environments["production"].config.monitoring
    assert staging.notification_channels != production.notification_channels
    assert staging.failure_ratio != production.failure_ratio
