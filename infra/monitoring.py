"""Seeing the queue run on Cloud Run: the metrics collector beside the queue, a dashboard and alert policies.

- The collector is Google's Managed Service for Prometheus sidecar for Cloud Run, a second container of the queue
  service that scrapes the queue's own GET /metrics over localhost (the service code is the same locally and in
  the cloud) with a RunMonitoring config kept in Secret Manager; the queue's account writes the metrics.
- The dashboard and the alert policies query those metrics with PromQL (queue-wide figures are the same on every
  instance, hence `max`), Cloud Run's own request and instance metrics, and Memorystore's memory usage. Every
  threshold and the notification channels (existing channels, by display name) come from `[monitoring]` in the
  environment file; metric names come from `callqueue.metrics.catalog`, the module the service exposes them from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_google.cloud_run_v2_service import (
    CloudRunV2ServiceTemplateContainers,
    CloudRunV2ServiceTemplateContainersVolumeMounts,
    CloudRunV2ServiceTemplateVolumes,
    CloudRunV2ServiceTemplateVolumesSecret,
    CloudRunV2ServiceTemplateVolumesSecretItems,
)
from cdktf_cdktf_provider_google.data_google_monitoring_notification_channel import (
    DataGoogleMonitoringNotificationChannel,
)
from cdktf_cdktf_provider_google.monitoring_alert_policy import (
    MonitoringAlertPolicy,
    MonitoringAlertPolicyConditions,
    MonitoringAlertPolicyConditionsConditionPrometheusQueryLanguage,
    MonitoringAlertPolicyConditionsConditionThreshold,
    MonitoringAlertPolicyConditionsConditionThresholdAggregations,
    MonitoringAlertPolicyDocumentation,
)
from cdktf_cdktf_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.secret_manager_secret import (
    SecretManagerSecret,
    SecretManagerSecretReplication,
    SecretManagerSecretReplicationAuto,
)
from cdktf_cdktf_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
from cdktf_cdktf_provider_google.secret_manager_secret_version import SecretManagerSecretVersion
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from constructs import Construct

from callqueue.metrics import catalog as m
from callqueue.metrics.route import METRICS_PATH
from infra.config import Environment, MemorystoreRedis
from infra.naming import service_name

QUEUE_CONTAINER = "queue"
COLLECTOR_CONTAINER = "collector"
CONFIG_VOLUME = "monitoring-config"
CONFIG_DIR = "/etc/rungmp/"  # where the sidecar reads config.yaml
METRIC_WRITER = "roles/monitoring.metricWriter"
FAILED = "failed|unknown|missed"


@dataclass(frozen=True)
class Sidecar:
    """What the queue service adds for the collector: its container, the config volume, the ingress name."""

    containers: list[CloudRunV2ServiceTemplateContainers]
    volumes: list[CloudRunV2ServiceTemplateVolumes]
    ingress_name: str
    depends_on: list[ITerraformDependable]


def run_monitoring_config(env: Environment, port: int) -> str:
    """The RunMonitoring document the sidecar reads (JSON is YAML): scrape the queue's /metrics on localhost."""
    spec = {
        "endpoints": [
            {"port": port, "path": METRICS_PATH, "interval": f"{env.config.monitoring.scrape_interval_seconds}s"}
        ]
    }
    doc = {
        "apiVersion": "monitoring.googleapis.com/v1beta",
        "kind": "RunMonitoring",
        "metadata": {"name": service_name(env, "queue")},
        "spec": spec,
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def collector_sidecar(scope: Construct, env: Environment, queue_sa: ServiceAccount, port: int) -> Sidecar:
    """The collector for the services stack; its API (monitoring.googleapis.com) is the foundation's (infra/apis.py).

    The config is mounted at the version this stack wrote, never `latest`: a changed config is a new revision.
    """
    cfg = env.config
    secret = SecretManagerSecret(
        scope,
        "collector_config",
        project=cfg.project,
        secret_id=f"{cfg.name_prefix}-collector-config",
        replication=SecretManagerSecretReplication(auto=SecretManagerSecretReplicationAuto()),
    )
    version = SecretManagerSecretVersion(
        scope, "collector_config_version", secret=secret.id, secret_data=run_monitoring_config(env, port)
    )
    member = f"serviceAccount:{queue_sa.email}"
    reads = SecretManagerSecretIamMember(
        scope,
        "queue_reads_collector_config",
        project=cfg.project,
        secret_id=secret.secret_id,
        role="roles/secretmanager.secretAccessor",
        member=member,
    )
    writes = ProjectIamMember(scope, "queue_writes_metrics", project=cfg.project, role=METRIC_WRITER, member=member)
    collector = CloudRunV2ServiceTemplateContainers(
        name=COLLECTOR_CONTAINER,
        image=cfg.monitoring.collector_image,
        depends_on=[QUEUE_CONTAINER],  # scrape once the queue answers
        volume_mounts=[CloudRunV2ServiceTemplateContainersVolumeMounts(name=CONFIG_VOLUME, mount_path=CONFIG_DIR)],
    )
    volume = CloudRunV2ServiceTemplateVolumes(
        name=CONFIG_VOLUME,
        secret=CloudRunV2ServiceTemplateVolumesSecret(
            secret=secret.secret_id,
            items=[CloudRunV2ServiceTemplateVolumesSecretItems(version=version.version, path="config.yaml")],
        ),
    )
    return Sidecar([collector], [volume], QUEUE_CONTAINER, [version, reads, writes])


# --- queries ------------------------------------------------------------------------------------------------------


def _max(name: str) -> str:
    return f"max({name})"


def failure_ratio_query(window: str = "15m") -> str:
    """Share of failed/unknown/missed outcomes among all outcomes in the window (queue-wide: max per series)."""
    finished = f"{m.FINISHED}_total"
    bad = f'sum(max by (outcome, campaign) (increase({finished}{{outcome=~"{FAILED}"}}[{window}])))'
    every = f"sum(max by (outcome, campaign) (increase({finished}[{window}])))"
    return f"({bad} / {every})"


def _cloud_run(env: Environment, metric: str, extra: str = "") -> str:
    labels = f'monitored_resource="cloud_run_revision",service_name="{service_name(env, "queue")}"{extra}'
    return f"run_googleapis_com:{metric}{{{labels}}}"


def dashboard_widgets(env: Environment) -> list[dict[str, Any]]:
    """(title, [(PromQL, legend)]) per chart; queue-wide series are aggregated with max (one value per instance)."""
    five_xx = _cloud_run(env, "request_count", ',response_code_class="5xx"')
    charts: list[tuple[str, list[tuple[str, str]]]] = [
        ("Queue depth", [(_max(m.QUEUE_DEPTH), "queued"), (_max(m.IN_FLIGHT), "in flight")]),
        ("Oldest queued call (s)", [(_max(m.QUEUE_OLDEST_AGE), "oldest queued")]),
        (
            "Dispatch pace vs DISPATCH_RATE (starts/s)",
            [(_max(m.DISPATCH_PACE), "pace"), (_max(m.DISPATCH_RATE_LIMIT), "limit")],
        ),
        (
            "Outcomes per minute",
            [(f"sum by (outcome) (max by (outcome, campaign) (rate({m.FINISHED}_total[5m]))) * 60", "{{outcome}}")],
        ),
        ("Failed, unknown or missed share (15 min)", [(failure_ratio_query(), "ratio")]),
        (
            "Time from dial to outcome (s)",
            [
                (f"histogram_quantile(0.5, max by (le) (rate({m.DIAL_TO_OUTCOME}_bucket[10m])))", "p50"),
                (f"histogram_quantile(0.95, max by (le) (rate({m.DIAL_TO_OUTCOME}_bucket[10m])))", "p95"),
            ],
        ),
        ("Results outbox", [(_max(m.OUTBOX_DEPTH), "pending"), (_max(m.DEAD_LETTERS), "dead letters")]),
        ("Plivo REST budget", [(_max(m.PLIVO_BUDGET_USED), "used"), (_max(m.PLIVO_BUDGET_LIMIT), "limit")]),
        (
            "Agent start latency (s)",
            [
                (f"histogram_quantile(0.95, sum by (le) (rate({m.AGENT_START_SECONDS}_bucket[5m])))", "p95"),
            ],
        ),
        (
            "Plivo callbacks by result (per min)",
            [
                (f"sum by (result) (max by (event, result) (rate({m.CALLBACKS}_total[5m]))) * 60", "{{result}}"),
            ],
        ),
        (
            "Instances",
            [
                (f"sum({_cloud_run(env, 'container_instance_count')})", "Cloud Run instances"),
                (_max(m.LIVE_WORKERS), "live dispatch workers"),
            ],
        ),
        (
            "5xx responses per minute",
            [
                (f"sum(rate({five_xx}[5m])) * 60", "5xx"),
            ],
        ),
    ]
    tiles = []
    for n, (title, queries) in enumerate(charts):
        data_sets = [
            {"timeSeriesQuery": {"prometheusQuery": query}, "plotType": "LINE", "legendTemplate": legend}
            for query, legend in queries
        ]
        tiles.append(
            {
                "xPos": (n % 2) * 24,
                "yPos": (n // 2) * 16,
                "width": 24,
                "height": 16,
                "widget": {"title": title, "xyChart": {"dataSets": data_sets}},
            }
        )
    return tiles


def dashboard(scope: Construct, env: Environment, depends_on: Sequence[ITerraformDependable]) -> MonitoringDashboard:
    body = {"displayName": f"callqueue ({env.name})", "mosaicLayout": {"columns": 48, "tiles": dashboard_widgets(env)}}
    return MonitoringDashboard(
        scope,
        "dashboard",
        project=env.config.project,
        dashboard_json=json.dumps(body, sort_keys=True),
        depends_on=list(depends_on),
    )


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    query: str  # PromQL, or a Cloud Monitoring filter when `threshold` is set
    duration_s: int
    runbook: str
    threshold: float | None = None


def alerts(env: Environment) -> list[Alert]:
    mon = env.config.monitoring
    workers = _max(m.LIVE_WORKERS)
    finished_15m = f"sum(max by (outcome, campaign) (increase({m.FINISHED}_total[15m])))"
    found = [
        Alert(
            "oldest_queued",
            f"Oldest queued call older than {mon.oldest_queued_minutes} min",
            f"{_max(m.QUEUE_OLDEST_AGE)} > {mon.oldest_queued_minutes * 60}",
            120,
            "Calls wait and none is dispatched: see the queue-backlog check (docs/runbook.md). No pause exists yet;"
            " once campaigns can be paused, this policy must ignore paused queues.",
        ),
        Alert(
            "stuck_in_flight",
            f"A call in flight for over {mon.stuck_in_flight_minutes} min",
            f"{_max(m.STUCK_IN_FLIGHT)} > {mon.stuck_in_flight_minutes * 60}",
            300,
            "A call holds its concurrency slot past any real call: see the stuck-calls check (docs/runbook.md).",
        ),
        Alert(
            "dead_letters",
            "Results dead-lettered",
            f"{_max(m.DEAD_LETTERS)} > 0",
            60,
            "The backend will never get these results: see results-outbox (docs/runbook.md).",
        ),
        Alert(
            "failure_ratio",
            f"failed/unknown/missed above {mon.failure_ratio:.0%} over 15 min",
            f"{failure_ratio_query()} > {mon.failure_ratio} and on() {finished_15m} >= {mon.failure_min_calls}",
            300,
            "Calls end badly: read the reasons in make logs and the operator page (docs/runbook.md).",
        ),
        Alert(
            "no_dispatch_heartbeat",
            f"No dispatch worker heartbeat for {mon.heartbeat_minutes} min",
            f"({workers} < 1) or absent({m.LIVE_WORKERS})",
            mon.heartbeat_minutes * 60,
            "Nothing dispatches: the queue's CPU is throttled or no instance runs (docs/runbook.md).",
        ),
    ]
    if isinstance(env.config.redis, MemorystoreRedis):
        redis_filter = (
            'resource.type = "redis_instance" AND metric.type = "redis.googleapis.com/stats/memory/usage_ratio"'
            f' AND resource.labels.instance_id = monitoring.regex.full_match(".*/{env.config.name_prefix}-redis")'
        )
        found.append(
            Alert(
                "redis_memory",
                f"Redis memory above {mon.redis_memory_ratio:.0%}",
                redis_filter,
                300,
                "Redis refuses writes when full (noeviction): scale memory_size_gb.",
                mon.redis_memory_ratio,
            )
        )
    else:
        query = f"max({m.REDIS_MEMORY_USED} / ({m.REDIS_MEMORY_MAX} > 0)) > {mon.redis_memory_ratio}"
        found.append(
            Alert(
                "redis_memory",
                f"Redis memory above {mon.redis_memory_ratio:.0%}",
                query,
                300,
                "Redis refuses writes when full (noeviction): give it more memory.",
            )
        )
    return found


def alert_policies(
    scope: Construct, env: Environment, depends_on: Sequence[ITerraformDependable]
) -> list[MonitoringAlertPolicy]:
    cfg = env.config
    channels = [
        DataGoogleMonitoringNotificationChannel(scope, f"channel_{n}", project=cfg.project, display_name=name).name
        for n, name in enumerate(cfg.monitoring.notification_channels)
    ]
    policies = []
    for alert in alerts(env):
        if alert.threshold is None:
            condition = MonitoringAlertPolicyConditions(
                display_name=alert.title,
                condition_prometheus_query_language=MonitoringAlertPolicyConditionsConditionPrometheusQueryLanguage(
                    query=alert.query, duration=f"{alert.duration_s}s", evaluation_interval="60s"
                ),
            )
        else:
            condition = MonitoringAlertPolicyConditions(
                display_name=alert.title,
                condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                    filter=alert.query,
                    comparison="COMPARISON_GT",
                    threshold_value=alert.threshold,
                    duration=f"{alert.duration_s}s",
                    aggregations=[
                        MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                            alignment_period="60s", per_series_aligner="ALIGN_MAX"
                        )
                    ],
                ),
            )
        policies.append(
            MonitoringAlertPolicy(
                scope,
                f"alert_{alert.key}",
                project=cfg.project,
                display_name=f"callqueue {env.name}: {alert.title}",
                combiner="OR",
                conditions=[condition],
                notification_channels=channels or None,
                documentation=MonitoringAlertPolicyDocumentation(content=alert.runbook, mime_type="text/markdown"),
                depends_on=list(depends_on),
            )
        )
    return policies
