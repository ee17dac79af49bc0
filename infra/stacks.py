"""One Terraform stack per environment: provider, GCS state, APIs, identities, Redis, image, services, outputs."""

from __future__ import annotations

from cdktf import GcsBackend, ITerraformDependable, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from infra import iam
from infra.apis import enable_apis
from infra.config import Environment
from infra.image import queue_image
from infra.monitoring import alert_policies, collector_sidecar, dashboard
from infra.queue_env import queue_env, webhooks_env
from infra.redis import redis_for
from infra.services import CONTAINER_PORT, agent_service, backend_service, queue_service, webhooks_service


class EnvironmentStack(TerraformStack):
    """Everything one environment runs, named after its file (`cdktf deploy staging`)."""

    def __init__(self, scope: Construct, env: Environment, image_tag: str) -> None:
        super().__init__(scope, env.name)
        cfg = env.config
        GoogleProvider(self, "google", project=cfg.project, region=cfg.region)
        GcsBackend(self, bucket=cfg.state_bucket, prefix=f"callqueue/{env.name}")

        apis: list[ITerraformDependable] = list(enable_apis(self, env))
        accounts = iam.service_accounts(self, env, apis)
        queue_sa = accounts["queue"]
        redis = redis_for(self, env, apis)
        image = queue_image(self, env, image_tag, apis)
        readers = iam.secret_readers(self, env, {"queue": queue_sa, "webhooks": accounts["webhooks"]})

        agent = agent_service(self, env, accounts["agent"], apis)
        backend = backend_service(self, env, accounts["backend"], apis)
        image_deps: list[ITerraformDependable] = [*apis, *readers]  # the queue image, deployed twice
        if image.build is not None:
            image_deps.append(image.build)
        queue_entries = queue_env(env, agent.uri, backend.uri, redis.url)
        queue = queue_service(
            self,
            env,
            queue_sa,
            image=image.reference,
            env_entries=queue_entries,
            vpc_access=redis.vpc_access,
            depends_on=image_deps,
            sidecar=collector_sidecar(self, env, queue_sa, CONTAINER_PORT, apis),
        )
        webhooks = webhooks_service(
            self,
            env,
            accounts["webhooks"],
            image=image.reference,
            env_entries=webhooks_env(env, queue_entries),
            vpc_access=redis.vpc_access,
            depends_on=image_deps,
        )
        services = {"queue": queue, "webhooks": webhooks, "agent": agent, "backend": backend}
        iam.invokers(self, env, services, queue_sa)
        dashboard(self, env, [queue])
        alert_policies(self, env, [queue])

        TerraformOutput(self, "queue_url", value=queue.uri)
        TerraformOutput(self, "webhooks_url", value=webhooks.uri)
        TerraformOutput(self, "agent_url", value=agent.uri)
        TerraformOutput(self, "backend_url", value=backend.uri)
        TerraformOutput(self, "queue_image", value=image.reference)
        if redis.instance is not None:
            TerraformOutput(self, "redis_host", value=redis.instance.host)
