"""The Google APIs a stack needs, enabled by the stack itself so a fresh project deploys in one run."""

from __future__ import annotations

from cdktf_cdktf_provider_google.project_service import ProjectService
from constructs import Construct

from infra.config import Environment, MemorystoreRedis

BASE_APIS: tuple[str, ...] = (
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
)
REDIS_API = "redis.googleapis.com"


def enable_apis(scope: Construct, env: Environment) -> list[ProjectService]:
    """One google_project_service per API; disable_on_destroy=false so a destroy never switches an API off."""
    apis = list(BASE_APIS)
    if isinstance(env.config.redis, MemorystoreRedis):
        apis.append(REDIS_API)
    return [
        ProjectService(
            scope,
            f"api_{api.split('.')[0]}",
            project=env.config.project,
            service=api,
            disable_on_destroy=False,
        )
        for api in sorted(apis)
    ]
