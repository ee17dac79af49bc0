"""The Artifact Registry repository every environment runs the queue image from, owned by one foundation.

Tags are immutable, so a tag names one image forever and nothing is pushed over a deployed one. The cleanup
policy touches only the queue image's package (the agent's and the backend's images, pushed by their teams, are
theirs): it keeps the newest `keep_versions` and every image a release record ever named (tagged `release-…` by
`infra/release.py`), and deletes the rest once older than `delete_after_days`. Environments in other projects
read it through their Cloud Run service agent, granted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_google.artifact_registry_repository import (
    ArtifactRegistryRepository,
    ArtifactRegistryRepositoryCleanupPolicies,
    ArtifactRegistryRepositoryCleanupPoliciesCondition,
    ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions,
    ArtifactRegistryRepositoryDockerConfig,
)
from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from constructs import Construct

from infra.config import Environment
from infra.naming import QUEUE_PACKAGE, RELEASE_TAG_PREFIX

READER = "roles/artifactregistry.reader"


def run_service_agent(project_number: str) -> str:
    """The identity Cloud Run pulls images as, in a project (cloud.google.com/run/docs/deploying#other-projects)."""
    return f"serviceAccount:service-{project_number}@serverless-robot-prod.iam.gserviceaccount.com"


def registry_protected(owner: Environment, consumers: Sequence[Environment]) -> bool:
    return owner.config.deletion_protection or any(c.config.deletion_protection for c in consumers)


def _policies(env: Environment) -> list[ArtifactRegistryRepositoryCleanupPolicies]:
    reg = env.config.registry
    queue_only = [QUEUE_PACKAGE]
    return [
        ArtifactRegistryRepositoryCleanupPolicies(
            id="delete-old-queue-images",
            action="DELETE",
            condition=ArtifactRegistryRepositoryCleanupPoliciesCondition(
                tag_state="ANY", older_than=f"{reg.delete_after_days * 86400}s", package_name_prefixes=queue_only
            ),
        ),
        ArtifactRegistryRepositoryCleanupPolicies(
            id="keep-recent-queue-images",
            action="KEEP",
            most_recent_versions=ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions(
                keep_count=reg.keep_versions, package_name_prefixes=queue_only
            ),
        ),
        ArtifactRegistryRepositoryCleanupPolicies(
            id="keep-released-queue-images",
            action="KEEP",
            condition=ArtifactRegistryRepositoryCleanupPoliciesCondition(
                tag_state="TAGGED", tag_prefixes=[RELEASE_TAG_PREFIX], package_name_prefixes=queue_only
            ),
        ),
    ]


def registry(
    scope: Construct,
    owner: Environment,
    consumers: Sequence[Environment],
    depends_on: Sequence[ITerraformDependable],
) -> ArtifactRegistryRepository:
    """The repository in `owner`'s project, readable by the Cloud Run service agent of every consumer's project.

    Protected from destroy when any environment running from it is protected: production's images live here.
    """
    address = owner.registry
    repository = ArtifactRegistryRepository(
        scope,
        "registry",
        project=address.project,
        location=address.location,
        repository_id=address.repository,
        format="DOCKER",
        description="call queue images: the queue, built once per commit and deployed by digest; agent, backend",
        docker_config=ArtifactRegistryRepositoryDockerConfig(immutable_tags=True),
        cleanup_policy_dry_run=False,
        cleanup_policies=_policies(owner),
        lifecycle=TerraformResourceLifecycle(prevent_destroy=registry_protected(owner, consumers)),
        depends_on=list(depends_on),
    )
    for consumer in consumers:
        project = DataGoogleProject(scope, f"consumer_{consumer.name}", project_id=consumer.config.project)
        ArtifactRegistryRepositoryIamMember(
            scope,
            f"registry_reader_{consumer.name}",
            project=address.project,
            location=address.location,
            repository=repository.name,
            role=READER,
            member=run_service_agent(project.number),
        )
    return repository
