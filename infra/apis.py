"""The Google APIs an environment needs, enabled once by its foundation stack (`make bootstrap`)."""

from __future__ import annotations

from cdktf_cdktf_provider_google.project_service import ProjectService
from constructs import Construct

from infra.config import Environment, MemorystoreRedis
from infra.naming import BOOTSTRAP_APIS

BASE_APIS: tuple[str, ...] = (
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",  # data google_project: the project number
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",  # the queue's metrics collector, dashboard and alert policies (infra/monitoring.py)
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
)
REDIS_API = "redis.googleapis.com"


def api_names(env: Environment) -> list[str]:
    apis = {*BASE_APIS, *BOOTSTRAP_APIS}
    if isinstance(env.config.redis, MemorystoreRedis):
        apis.add(REDIS_API)
    return sorted(apis)


def enable_apis(scope: Construct, env: Environment) -> list[ProjectService]:
    """One google_project_service per API; disable_on_destroy=false so a destroy never switches an API off."""
    return [
        ProjectService(
            scope,
            f"api_{api.split('.')[0]}",
            project=env.config.project,
            service=api,
            disable_on_destroy=False,
        )
        for api in api_names(env)
    ]
