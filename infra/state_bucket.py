"""The bucket holding every Terraform state of the environment, adopted by the foundation stack.

`make bootstrap` creates it with gcloud (Terraform cannot keep its state in a bucket it has yet to create), with
uniform access and public-access prevention from the first second; the foundation then imports it (an import
block: a no-op once it is in the state) and keeps it versioned, private and undeletable.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketVersioning,
)
from constructs import Construct

from infra.config import Environment

NONCURRENT_VERSIONS_KEPT = 20  # every state write is a version: enough to undo a bad apply by hand


def state_bucket(scope: Construct, env: Environment) -> StorageBucket:
    cfg = env.config
    bucket = StorageBucket(
        scope,
        "state_bucket",
        project=cfg.project,
        name=cfg.state_bucket,
        location=cfg.region.upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=StorageBucketVersioning(enabled=True),
        lifecycle_rule=[
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(
                    with_state="ARCHIVED", num_newer_versions=NONCURRENT_VERSIONS_KEPT
                ),
            )
        ],
        force_destroy=False,
        lifecycle=TerraformResourceLifecycle(prevent_destroy=True),  # losing it loses track of everything
    )
    bucket.import_from(cfg.state_bucket)
    return bucket
