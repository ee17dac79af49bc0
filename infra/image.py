"""The Artifact Registry repository and the queue image: built from the root Dockerfile at its content tag.

The build is a built-in `terraform_data` resource whose `triggers_replace` is the image reference, so Terraform
rebuilds exactly when the sources change. Its local-exec runs from the repository root, given relative to the
stack directory (`cdktf.out/stacks/<env>`) so the synthesized JSON holds no machine path.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable, LocalExecProvisioner, TerraformResource
from cdktf_cdktf_provider_google.artifact_registry_repository import ArtifactRegistryRepository
from constructs import Construct

from infra.config import Environment
from infra.naming import built_queue_image

# Terraform runs in cdktf.out/stacks/<env>; the repository root is three levels up.
REPO_ROOT_FROM_STACK = "${path.root}/../../.."


@dataclass(frozen=True)
class QueueImage:
    reference: str
    build: TerraformResource | None  # None when the environment pins `queue_image`


def build_command(env: Environment, image: str) -> str:
    cfg = env.config
    return shlex.join(
        ["gcloud", "builds", "submit", f"--project={cfg.project}", f"--region={cfg.region}", f"--tag={image}", "."]
    )


def queue_image(scope: Construct, env: Environment, tag: str, depends_on: Sequence[ITerraformDependable]) -> QueueImage:
    cfg = env.config
    repository = ArtifactRegistryRepository(
        scope,
        "registry",
        project=cfg.project,
        location=cfg.region,
        repository_id=cfg.artifact_repository,
        format="DOCKER",
        description="call queue images, tagged by content",
        depends_on=list(depends_on),
    )
    if cfg.queue_image is not None:
        return QueueImage(reference=cfg.queue_image, build=None)
    image = built_queue_image(env, tag)
    build = TerraformResource(
        scope,
        "queue_image_build",
        terraform_resource_type="terraform_data",
        depends_on=[repository, *depends_on],
        provisioners=[
            LocalExecProvisioner(type="local-exec", command=build_command(env, image), working_dir=REPO_ROOT_FROM_STACK)
        ],
    )
    build.add_override("triggers_replace", image)
    return QueueImage(reference=image, build=build)
