"""The four Cloud Run v2 services, built only from the typed struct classes (plain dicts drop fields silently).

Every service: the environment's region, an explicit request timeout, cpu AND memory limits, and `client` /
`client_version` ignored, so neither `gcloud run deploy` nor a memory-only limits block causes perpetual diffs.
The queue keeps CPU between requests (`cpu_idle = false`, at least one instance) because its tracker polls in
the background, and is told the other services' URLs by Terraform reference. The webhooks service runs the same
image with SERVICE_ROLE=webhooks: request-driven CPU, public, so Plivo's callbacks reach us while the queue's
API stays private. Public means Cloud Run's invoker check is off (`invoker_iam_disabled`), not an `allUsers`
grant, which organisation policies often forbid.

The queue image's probes: liveness on /api/live (the process serves; no dependency, so a Redis failover never
restarts every instance), startup on /api/health (Redis answers with noeviction). Provider 6.50 has no readiness
probe for Cloud Run v2, so /api/health gates an instance only while it starts. A container list is built in one
place (`_containers`), where the queue's metrics collector (infra/monitoring.py) is added after the queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_google.cloud_run_v2_service import (
    CloudRunV2Service,
    CloudRunV2ServiceTemplate,
    CloudRunV2ServiceTemplateContainers,
    CloudRunV2ServiceTemplateContainersEnv,
    CloudRunV2ServiceTemplateContainersEnvValueSource,
    CloudRunV2ServiceTemplateContainersEnvValueSourceSecretKeyRef,
    CloudRunV2ServiceTemplateContainersLivenessProbe,
    CloudRunV2ServiceTemplateContainersLivenessProbeHttpGet,
    CloudRunV2ServiceTemplateContainersPorts,
    CloudRunV2ServiceTemplateContainersResources,
    CloudRunV2ServiceTemplateContainersStartupProbe,
    CloudRunV2ServiceTemplateContainersStartupProbeHttpGet,
    CloudRunV2ServiceTemplateScaling,
    CloudRunV2ServiceTemplateVpcAccess,
)
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from constructs import Construct

from infra.config import Environment, ImageService, QueueService, WebhooksService
from infra.monitoring import Sidecar
from infra.naming import service_name
from infra.queue_env import EnvEntry

HEALTH_PATH = "/api/health"  # startup: Redis reachable and its eviction policy accepted
LIVE_PATH = "/api/live"  # liveness: the process serves, whatever Redis does
CONTAINER_PORT = 8080
IGNORED_FIELDS = ["client", "client_version"]


def _env(entries: Sequence[EnvEntry]) -> list[CloudRunV2ServiceTemplateContainersEnv]:
    rendered = []
    for entry in entries:
        if entry.secret is not None:
            ref = CloudRunV2ServiceTemplateContainersEnvValueSourceSecretKeyRef(
                secret=entry.secret.secret, version=entry.secret.version
            )
            source = CloudRunV2ServiceTemplateContainersEnvValueSource(secret_key_ref=ref)
            rendered.append(CloudRunV2ServiceTemplateContainersEnv(name=entry.name, value_source=source))
        else:
            rendered.append(CloudRunV2ServiceTemplateContainersEnv(name=entry.name, value=entry.value))
    return rendered


def _probes(
    probes: bool,
) -> tuple[
    CloudRunV2ServiceTemplateContainersStartupProbe | None, CloudRunV2ServiceTemplateContainersLivenessProbe | None
]:
    if not probes:
        return None, None
    startup = CloudRunV2ServiceTemplateContainersStartupProbe(
        http_get=CloudRunV2ServiceTemplateContainersStartupProbeHttpGet(path=HEALTH_PATH),
        period_seconds=5,
        timeout_seconds=3,
        failure_threshold=24,  # two minutes for Redis to answer (a failover) before the instance is replaced
    )
    liveness = CloudRunV2ServiceTemplateContainersLivenessProbe(
        http_get=CloudRunV2ServiceTemplateContainersLivenessProbeHttpGet(path=LIVE_PATH),
        period_seconds=30,
        timeout_seconds=5,
        failure_threshold=3,
    )
    return startup, liveness


def _containers(
    spec: QueueService | WebhooksService | ImageService,
    image: str,
    cpu_idle: bool,
    env_entries: Sequence[EnvEntry],
    probes: bool,
    sidecar: Sidecar | None,
) -> list[CloudRunV2ServiceTemplateContainers]:
    """The service's containers: its own, first (it receives the requests), then a sidecar's. With a sidecar,
    Cloud Run needs the ingress container named (the sidecar's `depends_on` names it too)."""
    startup, liveness = _probes(probes)
    main = CloudRunV2ServiceTemplateContainers(
        name=sidecar.ingress_name if sidecar else None,
        image=image,
        ports=CloudRunV2ServiceTemplateContainersPorts(container_port=CONTAINER_PORT),
        resources=CloudRunV2ServiceTemplateContainersResources(
            cpu_idle=cpu_idle, limits={"cpu": spec.cpu, "memory": spec.memory}
        ),
        env=_env(env_entries) or None,
        startup_probe=startup,
        liveness_probe=liveness,
    )
    return [main, *(sidecar.containers if sidecar else [])]


def _service(
    scope: Construct,
    construct_id: str,
    env: Environment,
    role: str,
    spec: QueueService | WebhooksService | ImageService,
    *,
    image: str,
    account: ServiceAccount,
    cpu_idle: bool,
    public: bool,
    env_entries: Sequence[EnvEntry] = (),
    probes: bool = False,
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None = None,
    depends_on: Sequence[ITerraformDependable] = (),
    sidecar: Sidecar | None = None,
) -> CloudRunV2Service:
    return CloudRunV2Service(
        scope,
        construct_id,
        project=env.config.project,
        location=env.config.region,
        name=service_name(env, role),
        deletion_protection=env.config.deletion_protection,
        ingress="INGRESS_TRAFFIC_ALL",
        invoker_iam_disabled=public,
        template=CloudRunV2ServiceTemplate(
            service_account=account.email,
            timeout=f"{spec.timeout_seconds}s",
            max_instance_request_concurrency=spec.concurrency,
            scaling=CloudRunV2ServiceTemplateScaling(
                min_instance_count=spec.min_instances, max_instance_count=spec.max_instances
            ),
            containers=_containers(spec, image, cpu_idle, env_entries, probes, sidecar),
            volumes=sidecar.volumes if sidecar else None,
            vpc_access=vpc_access,
        ),
        lifecycle=TerraformResourceLifecycle(ignore_changes=IGNORED_FIELDS),
        depends_on=[*depends_on, *(sidecar.depends_on if sidecar else [])],
    )


def agent_service(scope: Construct, env: Environment, account: ServiceAccount, image: str) -> CloudRunV2Service:
    spec = env.config.agent
    return _service(
        scope, "agent", env, "agent", spec, image=image, account=account, cpu_idle=spec.cpu_idle, public=spec.public,
    )  # fmt: skip


def backend_service(scope: Construct, env: Environment, account: ServiceAccount, image: str) -> CloudRunV2Service:
    """Construct id `backend_service`: `backend` directly under a stack collides with the stack's backend."""
    spec = env.config.backend
    return _service(
        scope, "backend_service", env, "backend", spec, image=image, account=account, cpu_idle=spec.cpu_idle,
        public=spec.public,
    )  # fmt: skip


def queue_service(
    scope: Construct,
    env: Environment,
    account: ServiceAccount,
    *,
    image: str,
    env_entries: Sequence[EnvEntry],
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None,
    depends_on: Sequence[ITerraformDependable],
    sidecar: Sidecar | None = None,
) -> CloudRunV2Service:
    """The queue, with the metrics collector beside it when `sidecar` is given (infra/monitoring.py)."""
    return _service(
        scope,
        "queue",
        env,
        "queue",
        env.config.queue,
        image=image,
        account=account,
        cpu_idle=False,
        public=env.config.queue.public,
        env_entries=env_entries,
        probes=True,
        vpc_access=vpc_access,
        depends_on=depends_on,
        sidecar=sidecar,
    )


def webhooks_service(
    scope: Construct,
    env: Environment,
    account: ServiceAccount,
    *,
    image: str,
    env_entries: Sequence[EnvEntry],
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None,
    depends_on: Sequence[ITerraformDependable],
) -> CloudRunV2Service:
    """The queue image as Plivo's callback endpoint: CPU only while a request runs, no background work, public."""
    return _service(
        scope,
        "webhooks",
        env,
        "webhooks",
        env.config.webhooks,
        image=image,
        account=account,
        cpu_idle=True,
        public=True,
        env_entries=env_entries,
        probes=True,
        vpc_access=vpc_access,
        depends_on=depends_on,
    )
