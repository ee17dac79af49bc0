"""Which images the services run, each checked at plan time and deployed by digest.

The queue (and its webhooks twin) run the digest the environment's release record names; a data source reads
that digest from the registry, so a plan fails before anything changes when the image is missing. The agent and
the backend are built elsewhere: when their image is in Artifact Registry, the same data source reads it (a
documented push step the plan checks for) and the service runs the digest its tag names at that moment.

An environment without a record still gets its stack, so it can be read and reviewed, but its queue image is
marked unreleased (`…/callqueue-queue@unreleased`, not a digest, so no registry resolves it) and the queue image
check refuses to plan, saying how to record one.
"""

from __future__ import annotations

import re

from cdktf import Precondition, TerraformLocal, TerraformResourceLifecycle
from cdktf_cdktf_provider_google.data_google_artifact_registry_docker_image import (
    DataGoogleArtifactRegistryDockerImage,
)
from constructs import Construct

from infra.config import Environment
from infra.naming import QUEUE_PACKAGE, queue_image_by_digest
from infra.releases import Release, how_to_release

UNRELEASED = "unreleased"  # in place of a digest: the image of an environment without a release record

_ARTIFACT_REGISTRY = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)/(?P<image>.+)$"
)


def registry_image(scope: Construct, construct_id: str, image: str) -> DataGoogleArtifactRegistryDockerImage | None:
    """A plan-time read of an Artifact Registry image (`name:tag` or `name@sha256:…`); None for other registries."""
    m = _ARTIFACT_REGISTRY.match(image)
    if m is None:
        return None
    return DataGoogleArtifactRegistryDockerImage(
        scope,
        construct_id,
        project=m["project"],
        location=m["location"],
        repository_id=m["repository"],
        image_name=m["image"],
    )


def unreleased_message(env: Environment) -> str:
    return (
        f"{env.name} has no release record (releases/{env.name}.json): its queue image is not built or promoted yet,"
        f" so this stack cannot be planned. Fix: {how_to_release(env.name)}, then make deploy ENV={env.name}"
    )


def queue_image(scope: Construct, env: Environment, release: Release | None) -> str:
    """The queue's image by digest, with the check that the registry holds it; without a record, the marked
    unreleased image and a check that fails at plan time (a precondition needs a reference, hence the local)."""
    address = env.registry
    lifecycle = None
    if release is None:
        recorded = TerraformLocal(scope, "queue_release_recorded", False)
        lifecycle = TerraformResourceLifecycle(
            precondition=[Precondition(condition=recorded.as_boolean, error_message=unreleased_message(env))]
        )
    DataGoogleArtifactRegistryDockerImage(
        scope,
        "queue_image_in_registry",
        project=address.project,
        location=address.location,
        repository_id=address.repository,
        image_name=f"{QUEUE_PACKAGE}@{release.digest if release else UNRELEASED}",
        lifecycle=lifecycle,
    )
    return queue_image_by_digest(env, release.digest if release else UNRELEASED)


def deployed_image(scope: Construct, construct_id: str, image: str) -> str:
    """What a service built elsewhere runs: the digest an Artifact Registry image resolves to, else `image`."""
    checked = registry_image(scope, construct_id, image)
    return image if checked is None else checked.self_link
