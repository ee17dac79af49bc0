"""The four Cloud Run v2 services, built only from the typed struct classes (plain dicts drop fields silently).

Every service: the environment's region, an explicit request timeout, cpu AND memory limits, and `client` /
`client_version` ignored, so neither `gcloud run deploy` nor a memory-only limits block causes perpetual diffs.
The queue keeps CPU between requests (`cpu_idle = false`, at least one instance) because its tracker polls in
the background, and is told the other services' URLs by Terraform reference. The webhooks service runs the same
image with SERVICE_ROLE=webhooks: request-driven CPU, public, so Plivo's callbacks reach us while the queue's
API stays private.
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

HEALTH_PATH = "/api/health"
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
    env_entries: Sequence[EnvEntry] = (),
    probes: bool = False,
    vpc_access: CloudRunV2ServiceTemplateVpcAccess | None = None,
    depends_on: Sequence[ITerraformDependable] = (),
    sidecar: Sidecar | None = None,
) -> CloudRunV2Service:
    container = CloudRunV2ServiceTemplateContainers(
        name=sidecar.ingress_name if sidecar else None,
        image=image,
        ports=CloudRunV2ServiceTemplateContainersPorts(container_port=CONTAINER_PORT),
        resources=CloudRunV2ServiceTemplateContainersResources(
            cpu_idle=cpu_idle, limits={"cpu": spec.cpu, "memory": spec.memory}
        ),
        env=_env(env_entries) or None,
        startup_probe=CloudRunV2ServiceTemplateContainersStartupProbe(
            http_get=CloudRunV2ServiceTemplateContainersStartupProbeHttpGet(path=HEALTH_PATH),
            period_seconds=5,
            timeout_seconds=3,
            failure_threshold=12,
        )
        if probes
        else None,
        liveness_probe=CloudRunV2ServiceTemplateContainersLivenessProbe(
            http_get=CloudRunV2ServiceTemplateContainersLivenessProbeHttpGet(path=HEALTH_PATH),
            period_seconds=30,
            timeout_seconds=5,
            failure_threshold=3,
        )
        if probes
        else None,
    )
    return CloudRunV2Service(
        scope,
        construct_id,
        project=env.config.project,
        location=env.config.region,
        name=service_name(env, role),
        deletion_protection=env.config.deletion_protection,
        ingress="INGRESS_TRAFFIC_ALL",
        template=CloudRunV2ServiceTemplate(
            service_account=account.email,
            timeout=f"{spec.timeout_seconds}s",
            max_instance_request_concurrency=spec.concurrency,
            scaling=CloudRunV2ServiceTemplateScaling(
                min_instance_count=spec.min_instances, max_instance_count=spec.max_instances
            ),
            containers=[container, *(sidecar.containers if sidecar else [])],
            volumes=sidecar.volumes if sidecar else None,
            vpc_access=vpc_access,
        ),
        lifecycle=TerraformResourceLifecycle(ignore_changes=IGNORED_FIELDS),
        depends_on=[*depends_on, *(sidecar.depends_on if sidecar else [])],
    )


def agent_service(
    scope: Construct, env: Environment, account: ServiceAccount, depends_on: Sequence[ITerraformDependable]
) -> CloudRunV2Service:
    spec = env.config.agent
    return _service(
        scope, "agent", env, "agent", spec, image=spec.image, account=account, cpu_idle=spec.cpu_idle,
        depends_on=depends_on,
    )  # fmt: skip


def backend_service(
    scope: Construct, env: Environment, account: ServiceAccount, depends_on: Sequence[ITerraformDependable]
) -> CloudRunV2Service:
    """Construct id `backend_service`: `backend` directly under a stack collides with the stack's backend."""
    spec = env.config.backend
    return _service(
        scope, "backend_service", env, "backend", spec, image=spec.image, account=account,
        cpu_idle=spec.cpu_idle, depends_on=depends_on,
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
    """The queue image as Plivo's callback endpoint: CPU only while a request runs, no background work."""
    return _service(
        scope,
        "webhooks",
        env,
        "webhooks",
        env.config.webhooks,
        image=image,
        account=account,
        cpu_idle=True,
        env_entries=env_entries,
        probes=True,
        vpc_access=vpc_access,
        depends_on=depends_on,
    )
