"""One Terraform stack per environment: what it runs (services, identities, Redis), on its foundation.

The foundation (infra/foundation.py, `make bootstrap`) must be applied first: APIs, state bucket, registry. This
stack only reads what it does not own: the project's number, the queue image at the digest of the environment's
release record, the agent's and backend's images, the Plivo secrets, each checked at plan time. Without a record
(`release` None) the stack is the same but for its queue image, marked unreleased, whose check refuses to plan.
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from cdktf_cdktf_provider_google.data_google_secret_manager_secret import DataGoogleSecretManagerSecret
from constructs import Construct

from infra import iam
from infra.config import Environment
from infra.image import deployed_image, queue_image
from infra.monitoring import alert_policies, collector_sidecar, dashboard
from infra.provider import configure
from infra.queue_env import queue_env, webhooks_env
from infra.redis import redis_for
from infra.releases import Release
from infra.services import CONTAINER_PORT, agent_service, backend_service, queue_service, webhooks_service


class EnvironmentStack(TerraformStack):
    """Everything one environment runs, named after its file (`cdktf deploy staging`)."""

    def __init__(self, scope: Construct, env: Environment, release: Release | None) -> None:
        super().__init__(scope, env.name)
        cfg = env.config
        configure(self, env, "services")
        project = DataGoogleProject(self, "project", project_id=cfg.project)
        for name, secret in (
            ("plivo_auth_id", cfg.plivo.auth_id_secret),
            ("plivo_auth_token", cfg.plivo.auth_token_secret),
        ):
            DataGoogleSecretManagerSecret(self, name, project=cfg.project, secret_id=secret)  # created by hand: checked

        accounts = iam.service_accounts(self, env)
        queue_sa = accounts["queue"]
        redis = redis_for(self, env)
        secrets = {
            cfg.plivo.auth_id_secret: cfg.plivo.auth_id_secret,
            cfg.plivo.auth_token_secret: cfg.plivo.auth_token_secret,
            "redis_url": redis.url.secret,
        }
        readers = iam.secret_readers(self, env, {"queue": queue_sa, "webhooks": accounts["webhooks"]}, secrets)
        image = queue_image(self, env, release)

        agent = agent_service(
            self, env, accounts["agent"], deployed_image(self, "agent_image_in_registry", cfg.agent.image)
        )
        backend = backend_service(
            self, env, accounts["backend"], deployed_image(self, "backend_image_in_registry", cfg.backend.image)
        )
        queue_entries = queue_env(
            env,
            agent_uri=agent.uri,
            backend_uri=backend.uri,
            project_number=project.number,
            redis_url=redis.url,
            redis_ca_cert=redis.ca_cert,
        )
        queue = queue_service(
            self, env, queue_sa, image=image, env_entries=queue_entries, vpc_access=redis.vpc_access,
            depends_on=readers, sidecar=collector_sidecar(self, env, queue_sa, CONTAINER_PORT),
        )  # fmt: skip
        webhooks = webhooks_service(
            self,
            env,
            accounts["webhooks"],
            image=image,
            env_entries=webhooks_env(env, queue_entries),
            vpc_access=redis.vpc_access,
            depends_on=readers,
        )
        services = {"queue": queue, "webhooks": webhooks, "agent": agent, "backend": backend}
        iam.invokers(self, env, services, queue_sa)
        dashboard(self, env, [queue])
        alert_policies(self, env, [queue])

        TerraformOutput(self, "queue_url", value=queue.uri)
        TerraformOutput(self, "webhooks_url", value=webhooks.uri)
        TerraformOutput(self, "agent_url", value=agent.uri)
        TerraformOutput(self, "backend_url", value=backend.uri)
        TerraformOutput(self, "queue_image", value=image)
        if redis.instance is not None:
            TerraformOutput(self, "redis_host", value=redis.instance.host)
