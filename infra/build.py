"""The account Cloud Build builds the queue image as, and the bucket its sources are uploaded to.

A dedicated account rather than the project's default build identity (which new projects no longer grant
anything): it may push to the registry, write build logs, and read the uploaded source archives; nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_google.artifact_registry_repository import ArtifactRegistryRepository
from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from infra.config import Environment
from infra.naming import build_account_id, build_bucket

SOURCE_RETENTION_DAYS = 7  # the commit is in git; the uploaded archive is only needed while the build runs


def build_account(
    scope: Construct,
    env: Environment,
    repository: ArtifactRegistryRepository,
    protected: bool,
    depends_on: Sequence[ITerraformDependable],
) -> tuple[ServiceAccount, StorageBucket]:
    cfg = env.config
    account = ServiceAccount(
        scope,
        "build_sa",
        project=cfg.project,
        account_id=build_account_id(),
        display_name="call queue image builds (Cloud Build)",
        lifecycle=TerraformResourceLifecycle(prevent_destroy=protected),
        depends_on=list(depends_on),
    )
    member = f"serviceAccount:{account.email}"
    bucket = StorageBucket(
        scope,
        "build_bucket",
        project=cfg.project,
        name=build_bucket(cfg.project),
        location=cfg.region.upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        force_destroy=True,
        lifecycle_rule=[
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(age=SOURCE_RETENTION_DAYS),
            )
        ],
        depends_on=list(depends_on),
    )
    StorageBucketIamMember(
        scope, "build_reads_sources", bucket=bucket.name, role="roles/storage.objectViewer", member=member
    )
    ArtifactRegistryRepositoryIamMember(
        scope,
        "build_pushes_images",
        project=cfg.project,
        location=env.registry.location,
        repository=repository.name,
        role="roles/artifactregistry.writer",
        member=member,
    )
    ProjectIamMember(scope, "build_writes_logs", project=cfg.project, role="roles/logging.logWriter", member=member)
    return account, bucket
